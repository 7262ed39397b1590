//! Building blocks shared by the text and image towers: a checked parameter source, fp32
//! LayerNorm, multi-head attention and the pre-LN residual transformer.
use super::config::Activation;
use super::ClipError;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Hands out tensors by key, checking shapes and casting to the tower's compute dtype.
/// Keys that are never taken are reported by [`Params::unused`].
pub struct Params {
    tensors: BTreeMap<String, Tensor>,
    kind: Kind,
    device: Device,
    parameters: i64,
    /// Keep the tensors' autograd identity (pretraining) instead of detaching frozen copies.
    trainable: bool,
}

impl Params {
    pub fn new(tensors: BTreeMap<String, Tensor>, kind: Kind, device: Device) -> Self {
        Params {
            tensors,
            kind,
            device,
            parameters: 0,
            trainable: false,
        }
    }

    /// Parameters that stay the caller's own fp32 tensors (e.g. a `VarStore`'s variables on
    /// `device`), so gradients of the model's outputs reach them: the same model code trains.
    pub fn trainable(tensors: BTreeMap<String, Tensor>, device: Device) -> Self {
        Params {
            trainable: true,
            ..Self::new(tensors, Kind::Float, device)
        }
    }

    fn take(&mut self, key: &str, shape: &[i64], kind: Kind) -> Result<Tensor, ClipError> {
        let t = self.take_buffer(key, shape, kind)?;
        self.parameters += t.numel() as i64;
        Ok(t)
    }

    fn take_buffer(&mut self, key: &str, shape: &[i64], kind: Kind) -> Result<Tensor, ClipError> {
        let t = self
            .tensors
            .remove(key)
            .ok_or_else(|| ClipError::MissingKey(key.to_string()))?;
        if t.size() != shape {
            return Err(ClipError::Shape {
                key: key.to_string(),
                expected: shape.to_vec(),
                found: t.size(),
            });
        }
        if self.trainable {
            if (t.device(), t.kind()) != (self.device, Kind::Float) {
                return Err(ClipError::Config(format!(
                    "trainable tensor `{key}` must be fp32 on {:?}",
                    self.device
                )));
            }
            return Ok(t);
        }
        Ok(t.to_device(self.device).to_kind(kind).detach())
    }

    /// Key -> shape of every tensor not yet taken (for inferring the architecture).
    pub fn shapes(&self) -> super::config::Shapes {
        self.tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.size()))
            .collect()
    }

    /// A weight in the compute dtype (fp32/fp16/bf16).
    pub fn get(&mut self, key: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        self.take(key, shape, self.kind)
    }

    /// A weight kept in fp32 whatever the precision (LayerNorm, BatchNorm, logit scale).
    pub fn get_f32(&mut self, key: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        self.take(key, shape, Kind::Float)
    }

    /// A non-parameter state tensor kept in fp32 (BatchNorm running statistics).
    pub fn buffer_f32(&mut self, key: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        self.take_buffer(key, shape, Kind::Float)
    }

    /// Elements of every parameter taken so far (buffers excluded, as `model.parameters()`).
    pub fn parameter_count(&self) -> i64 {
        self.parameters
    }

    /// Drops a key the model does not use (e.g. BatchNorm's `num_batches_tracked`).
    pub fn discard(&mut self, key: &str) {
        self.tensors.remove(key);
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Keys never taken, for a warning: extra heads or buffers in a checkpoint are not errors.
    pub fn unused(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// The whole state dict as a [`Scope`], which loaders narrow with [`Scope::pp`].
    pub fn root(&mut self) -> Scope<'_> {
        Scope {
            params: self,
            prefix: String::new(),
        }
    }
}

/// [`Params`] seen under a key prefix (candle's `VarBuilder::pp`): each module names only its
/// own tensors (`weight`, `ln_1`, `resblocks.3`), so no loader spells out a full key.
pub struct Scope<'a> {
    params: &'a mut Params,
    prefix: String,
}

impl Scope<'_> {
    /// The scope of a sub-module: `visual` then `transformer` reads `visual.transformer.*`.
    pub fn pp(&mut self, name: impl std::fmt::Display) -> Scope<'_> {
        let prefix = self.key(&name.to_string());
        Scope {
            params: &mut *self.params,
            prefix,
        }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// [`Params::get`] of `<prefix>.<name>`.
    pub fn get(&mut self, name: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        let key = self.key(name);
        self.params.get(&key, shape)
    }

    /// [`Params::get_f32`] of `<prefix>.<name>`.
    pub fn get_f32(&mut self, name: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        let key = self.key(name);
        self.params.get_f32(&key, shape)
    }

    /// [`Params::buffer_f32`] of `<prefix>.<name>`.
    pub fn buffer_f32(&mut self, name: &str, shape: &[i64]) -> Result<Tensor, ClipError> {
        let key = self.key(name);
        self.params.buffer_f32(&key, shape)
    }

    /// [`Params::discard`] of `<prefix>.<name>`.
    pub fn discard(&mut self, name: &str) {
        let key = self.key(name);
        self.params.discard(&key);
    }
}

/// Scaled dot-product attention over [N, H, L, d] heads (scale 1/sqrt(d), no dropout).
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Tensor {
    Tensor::scaled_dot_product_attention(q, k, v, None::<Tensor>, 0.0, causal, None, false)
}

/// LayerNorm computed in fp32 and cast back, as CLIP's `LayerNorm` subclass does.
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    pub fn load(mut p: Scope, width: i64) -> Result<Self, ClipError> {
        Ok(LayerNorm {
            weight: p.get_f32("weight", &[width])?,
            bias: p.get_f32("bias", &[width])?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let width = *self.weight.size().last().expect("1-d weight");
        x.to_kind(Kind::Float)
            .layer_norm([width], Some(&self.weight), Some(&self.bias), 1e-5, true)
            .to_kind(kind)
    }
}

/// Linear layer with PyTorch's [out, in] weight convention.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn load(mut p: Scope, inp: i64, out: i64) -> Result<Self, ClipError> {
        Ok(Linear {
            weight: p.get("weight", &[out, inp])?,
            bias: Some(p.get("bias", &[out])?),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.MultiheadAttention` with a packed q/k/v input projection (rows ordered q, k, v).
pub struct MultiHeadAttention {
    in_proj: Linear,
    out_proj: Linear,
    heads: i64,
}

impl MultiHeadAttention {
    pub fn load(mut p: Scope, width: i64, heads: i64) -> Result<Self, ClipError> {
        Ok(MultiHeadAttention {
            in_proj: Linear {
                weight: p.get("in_proj_weight", &[3 * width, width])?,
                bias: Some(p.get("in_proj_bias", &[3 * width])?),
            },
            out_proj: Linear::load(p.pp("out_proj"), width, width)?,
            heads,
        })
    }

    /// Per-head queries, keys and values [N, H, L, D/H] of `x` [N, L, D].
    fn project(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (n, l, d) = x.size3().expect("[N, L, D] input");
        let qkv = self
            .in_proj
            .forward(x)
            .view([n, l, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        (qkv.get(0), qkv.get(1), qkv.get(2))
    }

    /// Heads [N, H, L, D/H] back to [N, L, D], then the output projection.
    fn merge(&self, o: &Tensor) -> Tensor {
        let (n, h, l, e) = o.size4().expect("[N, H, L, E] heads");
        self.out_proj
            .forward(&o.transpose(1, 2).reshape([n, l, h * e]))
    }

    /// Self-attention over `x` [N, L, D]; `causal` masks strictly-future positions.
    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        self.forward_with_kv(x, causal).0
    }

    /// [`Self::forward`], also returning the keys and values [N, H, L, D/H] it attended to, so
    /// that tokens appended later can attend to this sequence without recomputing it.
    pub fn forward_with_kv(&self, x: &Tensor, causal: bool) -> (Tensor, Tensor, Tensor) {
        let (q, k, v) = self.project(x);
        let o = attend(&q, &k, &v, causal);
        (self.merge(&o), k, v)
    }

    /// Causal attention of `x` [N, T, D], the continuation of sequences whose first P tokens
    /// gave keys and values `prefix_k`, `prefix_v` ([1 or N, H, P, D/H]): each token sees every
    /// prefix token, itself and the earlier tokens of `x`, exactly as in the full sequence.
    pub fn forward_after_prefix(&self, x: &Tensor, prefix_k: &Tensor, prefix_v: &Tensor) -> Tensor {
        let (n, t, _) = x.size3().expect("[N, T, D] input");
        let p = prefix_k.size()[2];
        let (q, k, v) = self.project(x);
        let k = Tensor::cat(&[&prefix_k.expand([n, -1, -1, -1], false), &k], 2);
        let v = Tensor::cat(&[&prefix_v.expand([n, -1, -1, -1], false), &v], 2);
        // `is_causal` aligns its triangle to the top-left corner when queries and keys differ in
        // length, which would hide most of the prefix: the mask is spelled out instead.
        let opts = (Kind::Int64, x.device());
        let query = Tensor::arange(t, opts).unsqueeze(1);
        let key = Tensor::arange(p + t, opts).unsqueeze(0) - p;
        let mask = key.le_tensor(&query);
        let o =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false);
        self.merge(&o)
    }
}

/// Pre-LN residual block: `x += attn(ln_1(x))`, `x += mlp(ln_2(x))`.
pub struct ResidualBlock {
    ln_1: LayerNorm,
    attn: MultiHeadAttention,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
    activation: Activation,
}

impl ResidualBlock {
    pub fn load(
        mut p: Scope,
        width: i64,
        heads: i64,
        activation: Activation,
    ) -> Result<Self, ClipError> {
        let ln_1 = LayerNorm::load(p.pp("ln_1"), width)?;
        let attn = MultiHeadAttention::load(p.pp("attn"), width, heads)?;
        let ln_2 = LayerNorm::load(p.pp("ln_2"), width)?;
        let mut mlp = p.pp("mlp");
        Ok(ResidualBlock {
            ln_1,
            attn,
            ln_2,
            c_fc: Linear::load(mlp.pp("c_fc"), width, 4 * width)?,
            c_proj: Linear::load(mlp.pp("c_proj"), 4 * width, width)?,
            activation,
        })
    }

    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        let x = x + self.attn.forward(&self.ln_1.forward(x), causal);
        self.mlp_residual(&x)
    }

    /// Causal [`Self::forward`], also returning this block's attention keys and values
    /// [N, H, L, D/H] for [`Self::forward_after_prefix`].
    pub fn forward_causal_with_kv(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (a, k, v) = self.attn.forward_with_kv(&self.ln_1.forward(x), true);
        (self.mlp_residual(&(x + a)), k, v)
    }

    /// The block on tokens `x` [N, T, D] that continue a causal sequence whose earlier tokens
    /// gave this block's keys and values `prefix_k`, `prefix_v` ([1 or N, H, P, D/H]).
    pub fn forward_after_prefix(&self, x: &Tensor, prefix_k: &Tensor, prefix_v: &Tensor) -> Tensor {
        let a = self
            .attn
            .forward_after_prefix(&self.ln_1.forward(x), prefix_k, prefix_v);
        self.mlp_residual(&(x + a))
    }

    fn mlp_residual(&self, x: &Tensor) -> Tensor {
        let h = self.c_fc.forward(&self.ln_2.forward(x));
        let h = match self.activation {
            Activation::QuickGelu => &h * (&h * 1.702).sigmoid(),
            Activation::Gelu => h.gelu("none"),
        };
        x + self.c_proj.forward(&h)
    }
}

/// The shape of a residual stack: the text tower's and the ViT's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackConfig {
    pub width: i64,
    pub layers: i64,
    pub heads: i64,
    pub activation: Activation,
}

/// A stack of residual blocks (`resblocks.<i>`).
pub struct Transformer {
    pub blocks: Vec<ResidualBlock>,
}

impl Transformer {
    pub fn load(mut p: Scope, c: StackConfig) -> Result<Self, ClipError> {
        let mut blocks = p.pp("resblocks");
        let blocks = (0..c.layers)
            .map(|i| ResidualBlock::load(blocks.pp(i), c.width, c.heads, c.activation))
            .collect::<Result<_, _>>()?;
        Ok(Transformer { blocks })
    }

    pub fn forward(&self, x: &Tensor, causal: bool) -> Tensor {
        self.blocks
            .iter()
            .fold(x.shallow_clone(), |x, b| b.forward(&x, causal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(keys: &[&str]) -> Params {
        let tensors = keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    Tensor::zeros([2], (Kind::Float, Device::Cpu)),
                )
            })
            .collect();
        Params::new(tensors, Kind::Float, Device::Cpu)
    }

    #[test]
    fn scopes_join_names_into_openai_keys() {
        let mut p = params(&[
            "logit_scale",
            "visual.transformer.resblocks.3.ln_1.bias",
            "visual.layer2.0.downsample.1.weight",
        ]);
        let mut root = p.root();
        let _ = root.get("logit_scale", &[2]).unwrap();
        let mut visual = root.pp("visual");
        let _ = visual
            .pp("transformer")
            .pp("resblocks")
            .pp(3)
            .pp("ln_1")
            .get("bias", &[2])
            .unwrap();
        let mut layer = visual.pp(format!("layer{}", 2));
        let _ = layer
            .pp(0)
            .pp("downsample")
            .pp("1")
            .get("weight", &[2])
            .unwrap();
        assert!(p.unused().is_empty(), "{:?}", p.unused());
    }

    #[test]
    fn a_missing_tensor_is_named_by_its_full_key() {
        let mut p = params(&[]);
        let err = p.root().pp("visual").pp("ln_post").get("weight", &[2]);
        assert!(
            matches!(&err, Err(ClipError::MissingKey(k)) if k == "visual.ln_post.weight"),
            "{:?}",
            err.err().map(|e| e.to_string())
        );
    }
}

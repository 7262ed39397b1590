//! CLIP's ModifiedResNet image tower: three-conv stem, anti-aliased (avg-pool) strides and an
//! attention-pooling head. BatchNorm always uses its running statistics (CLIP stays in eval mode).
use super::config::ResNetConfig;
use super::layers::{Linear, Scope};
use super::ClipError;
use tch::{Kind, Tensor};

struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl BatchNorm {
    fn load(mut p: Scope, c: i64) -> Result<Self, ClipError> {
        p.discard("num_batches_tracked");
        Ok(BatchNorm {
            weight: p.get_f32("weight", &[c])?,
            bias: p.get_f32("bias", &[c])?,
            mean: p.buffer_f32("running_mean", &[c])?,
            var: p.buffer_f32("running_var", &[c])?,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.to_kind(Kind::Float)
            .batch_norm(
                Some(&self.weight),
                Some(&self.bias),
                Some(&self.mean),
                Some(&self.var),
                false,
                0.0,
                1e-5,
                false,
            )
            .to_kind(x.kind())
    }
}

struct ConvBn {
    conv: Tensor,
    bn: BatchNorm,
    padding: i64,
}

impl ConvBn {
    /// A convolution and the BatchNorm after it, named `conv` and `bn` under `p`.
    fn load(
        p: &mut Scope,
        conv: &str,
        bn: &str,
        (cin, cout, k): (i64, i64, i64),
    ) -> Result<Self, ClipError> {
        Ok(ConvBn {
            conv: p.pp(conv).get("weight", &[cout, cin, k, k])?,
            bn: BatchNorm::load(p.pp(bn), cout)?,
            padding: k / 2,
        })
    }

    fn forward(&self, x: &Tensor, stride: i64) -> Tensor {
        let y = x.conv2d(
            &self.conv,
            None::<Tensor>,
            [stride, stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        );
        self.bn.forward(&y)
    }
}

fn avg_pool(x: &Tensor, k: i64) -> Tensor {
    if k == 1 {
        return x.shallow_clone();
    }
    x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None)
}

struct Bottleneck {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    downsample: Option<ConvBn>,
    stride: i64,
}

impl Bottleneck {
    fn load(mut p: Scope, inplanes: i64, planes: i64, stride: i64) -> Result<Self, ClipError> {
        let downsample = if stride > 1 || inplanes != planes * 4 {
            Some(ConvBn::load(
                &mut p.pp("downsample"),
                "0",
                "1",
                (inplanes, planes * 4, 1),
            )?)
        } else {
            None
        };
        Ok(Bottleneck {
            c1: ConvBn::load(&mut p, "conv1", "bn1", (inplanes, planes, 1))?,
            c2: ConvBn::load(&mut p, "conv2", "bn2", (planes, planes, 3))?,
            c3: ConvBn::load(&mut p, "conv3", "bn3", (planes, planes * 4, 1))?,
            downsample,
            stride,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let out = self.c1.forward(x, 1).relu();
        let out = self.c2.forward(&out, 1).relu();
        let out = self.c3.forward(&avg_pool(&out, self.stride), 1);
        let identity = match &self.downsample {
            Some(d) => d.forward(&avg_pool(x, self.stride), 1),
            None => x.shallow_clone(),
        };
        (out + identity).relu()
    }
}

struct AttentionPool {
    positional_embedding: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    c: Linear,
    heads: i64,
}

impl AttentionPool {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (n, c, _, _) = x.size4().expect("[N, C, H, W] input");
        let x = x.reshape([n, c, -1]).transpose(1, 2);
        let kind = x.kind();
        let x = Tensor::cat(&[x.mean_dim(1, true, None), x], 1)
            + self.positional_embedding.to_kind(kind);
        let hd = c / self.heads;
        let split = |t: Tensor| {
            let l = t.size()[1];
            t.view([n, l, self.heads, hd]).transpose(1, 2)
        };
        // Only the mean token's output is kept, so it is the only query computed.
        let q = split(self.q.forward(&x.narrow(1, 0, 1)));
        let k = split(self.k.forward(&x));
        let v = split(self.v.forward(&x));
        let o = super::layers::attend(&q, &k, &v, false);
        self.c.forward(&o.transpose(1, 2).reshape([n, c]))
    }
}

pub struct ModifiedResNet {
    stem: [ConvBn; 3],
    layers: Vec<Bottleneck>,
    attnpool: AttentionPool,
}

impl ModifiedResNet {
    /// The tower under `p` (OpenAI's `visual`).
    pub fn load(mut p: Scope, cfg: &ResNetConfig, embed_dim: i64) -> Result<Self, ClipError> {
        let width = cfg.width;
        let half = width / 2;
        let stem = [
            ConvBn::load(&mut p, "conv1", "bn1", (3, half, 3))?,
            ConvBn::load(&mut p, "conv2", "bn2", (half, half, 3))?,
            ConvBn::load(&mut p, "conv3", "bn3", (half, width, 3))?,
        ];
        let mut blocks = Vec::new();
        let mut inplanes = width;
        for (stage, &count) in cfg.layers.iter().enumerate() {
            let planes = width << stage;
            let mut layer = p.pp(format!("layer{}", stage + 1));
            for j in 0..count {
                let stride = if stage > 0 && j == 0 { 2 } else { 1 };
                blocks.push(Bottleneck::load(layer.pp(j), inplanes, planes, stride)?);
                inplanes = planes * 4;
            }
        }
        let c = width * 32;
        let spatial = cfg.resolution / 32;
        let mut pool = p.pp("attnpool");
        let attnpool = AttentionPool {
            positional_embedding: pool.get("positional_embedding", &[spatial * spatial + 1, c])?,
            q: Linear::load(pool.pp("q_proj"), c, c)?,
            k: Linear::load(pool.pp("k_proj"), c, c)?,
            v: Linear::load(pool.pp("v_proj"), c, c)?,
            c: Linear::load(pool.pp("c_proj"), c, embed_dim)?,
            heads: cfg.heads,
        };
        Ok(ModifiedResNet {
            stem,
            layers: blocks,
            attnpool,
        })
    }

    pub fn forward(&self, pixels: &Tensor) -> Tensor {
        let kind = self.stem[0].conv.kind();
        let mut x = pixels.to_kind(kind);
        for (i, c) in self.stem.iter().enumerate() {
            x = c.forward(&x, if i == 0 { 2 } else { 1 }).relu();
        }
        let mut x = avg_pool(&x, 2);
        for b in &self.layers {
            x = b.forward(&x);
        }
        self.attnpool.forward(&x)
    }
}

//! CLIP's Vision Transformer image tower.
use super::config::{Activation, VitConfig};
use super::layers::{LayerNorm, Scope, StackConfig, Transformer};
use super::ClipError;
use tch::Tensor;

pub struct VisionTransformer {
    conv1: Tensor,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: LayerNorm,
    transformer: Transformer,
    ln_post: LayerNorm,
    proj: Tensor,
    patch: i64,
}

impl VisionTransformer {
    /// The tower under `p` (OpenAI's `visual`).
    pub fn load(
        mut p: Scope,
        c: &VitConfig,
        embed_dim: i64,
        activation: Activation,
    ) -> Result<Self, ClipError> {
        let (width, patch) = (c.width, c.patch);
        let grid = c.resolution / patch;
        let stack = StackConfig {
            width,
            layers: c.layers,
            heads: c.heads,
            activation,
        };
        Ok(VisionTransformer {
            conv1: p.get("conv1.weight", &[width, 3, patch, patch])?,
            class_embedding: p.get("class_embedding", &[width])?,
            positional_embedding: p.get("positional_embedding", &[grid * grid + 1, width])?,
            ln_pre: LayerNorm::load(p.pp("ln_pre"), width)?,
            transformer: Transformer::load(p.pp("transformer"), stack)?,
            ln_post: LayerNorm::load(p.pp("ln_post"), width)?,
            proj: p.get("proj", &[width, embed_dim])?,
            patch,
        })
    }

    pub fn forward(&self, pixels: &Tensor) -> Tensor {
        let x = pixels.to_kind(self.conv1.kind()).conv2d(
            &self.conv1,
            None::<Tensor>,
            [self.patch, self.patch],
            [0, 0],
            [1, 1],
            1,
        );
        let (n, w, _, _) = x.size4().expect("conv output [N, W, H, W]");
        let x = x.reshape([n, w, -1]).transpose(1, 2);
        let cls = self
            .class_embedding
            .view([1, 1, w])
            .expand([n, 1, w], false);
        let x = Tensor::cat(&[cls, x], 1) + &self.positional_embedding;
        let x = self.transformer.forward(&self.ln_pre.forward(&x), false);
        self.ln_post.forward(&x.select(1, 0)).matmul(&self.proj)
    }
}

//! CLIP's Vision Transformer image tower.
use super::config::Activation;
use super::layers::{LayerNorm, Params, Transformer};
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
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        p: &mut Params,
        width: i64,
        layers: i64,
        heads: i64,
        patch: i64,
        resolution: i64,
        embed_dim: i64,
        activation: Activation,
    ) -> Result<Self, ClipError> {
        let grid = resolution / patch;
        Ok(VisionTransformer {
            conv1: p.get("visual.conv1.weight", &[width, 3, patch, patch])?,
            class_embedding: p.get("visual.class_embedding", &[width])?,
            positional_embedding: p
                .get("visual.positional_embedding", &[grid * grid + 1, width])?,
            ln_pre: LayerNorm::load(p, "visual.ln_pre", width)?,
            transformer: Transformer::load(
                p,
                "visual.transformer",
                width,
                layers,
                heads,
                activation,
            )?,
            ln_post: LayerNorm::load(p, "visual.ln_post", width)?,
            proj: p.get("visual.proj", &[width, embed_dim])?,
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

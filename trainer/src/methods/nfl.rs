//! NFL (novel feature learner): keeps the learned context's text features of extra class names
//! (no images) close to zero-shot CLIP's features of the same names.
use super::prompt_learner::{PromptLearner, PromptSet};
use crate::clip::{normalize, Clip};
use tch::{Kind, Tensor};

/// The extra names' prompts and their frozen, L2-normalised zero-shot targets.
pub struct Nfl {
    pub prompts: PromptSet,
    /// [n_names, embed], unit rows.
    pub targets: Tensor,
    pub lambda: f64,
}

impl Nfl {
    /// `lambda * mean_i (1 - cos(t_i, z_i))`, as `CosineEmbeddingLoss` with target +1.
    pub fn loss(&self, clip: &Clip, learner: &PromptLearner) -> Tensor {
        let t = normalize(&learner.extra_features(clip, &self.prompts));
        let z = self.targets.to_device(t.device()).to_kind(Kind::Float);
        let cos = (&t * &z).sum_dim_intlist(-1, false, Kind::Float);
        (cos.neg() + 1.0).mean(Kind::Float) * self.lambda
    }
}

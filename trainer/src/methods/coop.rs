//! CoOp's classifier head: cosine logits between image features and the learned class prompts,
//! scaled by CLIP's (frozen) logit scale, trained with cross-entropy.
use super::prompt_learner::PromptLearner;
use crate::clip::{normalize, Clip};
use tch::{Kind, Tensor};

/// `exp(logit_scale) * norm(img) @ norm(txt)^T`.
pub fn logits(clip: &Clip, image_features: &Tensor, text_features: &Tensor) -> Tensor {
    normalize(image_features).matmul(&normalize(text_features).tr()) * clip.logit_scale
}

/// Cross-entropy of the learned prompts on a batch of (frozen) image features.
pub fn loss(
    clip: &Clip,
    learner: &PromptLearner,
    image_features: &Tensor,
    labels: &Tensor,
) -> (Tensor, Tensor) {
    let logits = logits(clip, image_features, &learner.class_features(clip));
    let loss = logits.cross_entropy_for_logits(labels);
    (loss, logits)
}

/// Top-1 correct count of `logits` against `labels`.
pub fn correct(logits: &Tensor, labels: &Tensor) -> i64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Int64)
        .sum(Kind::Int64)
        .int64_value(&[])
}

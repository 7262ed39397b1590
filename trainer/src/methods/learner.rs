//! The one interface over the prompt learners: what the training loop trains and what a cell
//! evaluates. CoOp-style prompts (with NFL's loss when the setup has one) and CoCoOp implement
//! it; zero-shot CLIP has nothing to learn and is no `Learner`.
use super::subspace::Projector;
use crate::clip::Clip;
use crate::engine::error::RunError;
use crate::engine::eval::{Classifier, EvalSet};
use tch::Tensor;

/// A rule that turns the trained tensors' gradients (the context's first) into the step's,
/// applied after the data-parallel all-reduce. SubPT's projection onto its subspace is one.
pub trait GradientRule {
    fn apply(&self, grads: &mut [Tensor]);
}

impl GradientRule for Projector {
    /// Projects the context's gradient: `g <- U^T U g`.
    fn apply(&self, grads: &mut [Tensor]) {
        if let Some(g) = grads.first_mut() {
            *g = self.project(g);
        }
    }
}

pub trait Learner {
    /// Mean cross-entropy of a batch of image features and its logits.
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> (Tensor, Tensor);

    /// Loss terms that do not depend on the batch, by name (`nfl` when the cell has NFL).
    fn extra_terms(&self, _clip: &Clip) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }

    /// The trained tensors; the context first (what SubPT projects and the trajectory records).
    fn params_mut(&mut self) -> Vec<&mut Tensor>;

    /// The learned context.
    fn ctx(&self) -> &Tensor;

    /// The classifier of `set`'s classes with the current parameters (prompts rebuilt for
    /// them); the engine evaluates it.
    fn classifier<'a>(&'a self, clip: &'a Clip, set: &EvalSet) -> Result<Classifier<'a>, RunError>;
}

//! The one interface over the prompt learners: what the training loop trains and what a cell
//! evaluates. CoOp-style prompts (with their methods' loss terms) and CoCoOp implement it;
//! zero-shot CLIP has nothing to learn and is no `Learner`.
use super::subspace::Projector;
use crate::clip::Clip;
use crate::engine::error::RunError;
use crate::engine::eval::{Classifier, EvalSet};
use tch::Tensor;

/// A batch's loss as the learner computes it: its terms by name, cross-entropy (`ce`) first,
/// and the logits the batch's accuracy is read from.
pub struct BatchLoss {
    pub terms: Vec<(&'static str, Tensor)>,
    pub logits: Tensor,
}

impl BatchLoss {
    /// Cross-entropy alone (CoOp, CoCoOp).
    pub fn ce(ce: Tensor, logits: Tensor) -> Self {
        BatchLoss {
            terms: vec![("ce", ce)],
            logits,
        }
    }
}

/// The gradients of one step, one entry per loss term the rules read apart (each with one
/// gradient per trained tensor, the context's first); every other term reaches the rules
/// summed, as [`REST`] (the whole loss when no rule reads a term apart).
pub type TermGrads = Vec<(&'static str, Vec<Tensor>)>;

/// The name the summed gradient of the terms no rule reads apart goes by.
pub const REST: &str = "loss";

/// A rule that turns the step's gradients into the update's, applied after the data-parallel
/// all-reduce (each term's gradients summed over the group first: a rule need not be linear).
/// SubPT's projection is one; ProGrad's, which reads cross-entropy's and the KL term's
/// gradients apart, another. The loop sums what the rules leave.
pub trait GradientRule {
    /// The loss terms whose gradients this rule reads apart; where no rule reads any, the
    /// terms share one backward pass.
    fn reads_apart(&self) -> &'static [&'static str] {
        &[]
    }
    fn apply(&self, grads: &mut TermGrads);
}

impl GradientRule for Projector {
    /// Projects the context's gradient of every term: `g <- U^T U g` (linear, so projecting
    /// each term is projecting their sum).
    fn apply(&self, grads: &mut TermGrads) {
        for (_, g) in grads.iter_mut() {
            if let Some(ctx) = g.first_mut() {
                *ctx = self.project(ctx);
            }
        }
    }
}

/// What a batch's terms of the CoOp family read: the batch's (frozen, unnormalised) image
/// features, the learned prompts' class features (unnormalised) and their logits.
pub struct PromptStep<'a> {
    pub img: &'a Tensor,
    pub class_features: &'a Tensor,
    pub logits: &'a Tensor,
}

/// A loss term the CoOp family adds to cross-entropy on every batch (KgCoOp's knowledge term,
/// ProGrad's KL term), owned by its method's file and built by its `MethodDef::prompt_terms`.
pub trait PromptTerm {
    fn name(&self) -> &'static str;
    fn value(&self, clip: &Clip, step: &PromptStep) -> Tensor;
}

pub trait Learner {
    /// The loss terms of a batch of image features, cross-entropy first, and its logits.
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> BatchLoss;

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

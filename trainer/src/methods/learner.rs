//! The one interface over the prompt learners: what the training loop trains and what a cell
//! evaluates. CoOp-style prompts (with NFL's loss when the setup has one) and CoCoOp implement
//! it; zero-shot CLIP has nothing to learn and is no `Learner`.
use super::cocoop::CoCoOp;
use super::coop;
use super::nfl::Nfl;
use super::prompt_learner::{PromptLearner, PromptSet};
use super::subspace::Projector;
use crate::cache::FeatureCache;
use crate::clip::tokenizer::Tokenizer;
use crate::clip::Clip;
use crate::engine::error::RunError;
use crate::engine::eval::{evaluate, evaluate_with, EvalResult, EvalSet};
use crate::engine::spec::RunSpec;
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

    /// Test accuracy on `set` with the current parameters (prompts rebuilt for its classes).
    fn evaluate(
        &self,
        clip: &Clip,
        cache: &FeatureCache,
        weights_digest: &str,
        spec: &RunSpec,
        set: &EvalSet,
    ) -> Result<EvalResult, RunError>;
}

impl Learner for PromptLearner {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        coop::loss(clip, self, img, labels)
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.ctx]
    }

    fn ctx(&self) -> &Tensor {
        &self.ctx
    }

    fn evaluate(
        &self,
        clip: &Clip,
        cache: &FeatureCache,
        weights_digest: &str,
        spec: &RunSpec,
        set: &EvalSet,
    ) -> Result<EvalResult, RunError> {
        if self.config.class_specific && set.classnames.len() != self.classes.len() {
            return Err(RunError::Spec(format!(
                "class-specific contexts cannot be evaluated on other classes (`{}` subset)",
                set.name
            )));
        }
        let prompts = PromptSet::new(
            clip,
            &Tokenizer::new(),
            &set.classnames,
            &self.ctx_words,
            self.config.effective_n_ctx(),
        )?;
        let text = tch::no_grad(|| self.features_for(clip, &prompts));
        Ok(evaluate(clip, cache, weights_digest, spec, set, &text)?)
    }
}

/// The CoOp family's learner: the prompts and, in NFL cells, NFL's term on them.
pub struct CoopLearner {
    pub prompts: PromptLearner,
    pub nfl: Option<Nfl>,
}

impl Learner for CoopLearner {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        self.prompts.loss(clip, img, labels)
    }

    fn extra_terms(&self, clip: &Clip) -> Vec<(&'static str, Tensor)> {
        self.nfl
            .iter()
            .map(|n| ("nfl", n.loss(clip, &self.prompts)))
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.prompts.params_mut()
    }

    fn ctx(&self) -> &Tensor {
        &self.prompts.ctx
    }

    fn evaluate(
        &self,
        clip: &Clip,
        cache: &FeatureCache,
        weights_digest: &str,
        spec: &RunSpec,
        set: &EvalSet,
    ) -> Result<EvalResult, RunError> {
        self.prompts
            .evaluate(clip, cache, weights_digest, spec, set)
    }
}

impl Learner for CoCoOp {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        CoCoOp::loss(self, clip, img, labels)
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.parameters_mut()
    }

    fn ctx(&self) -> &Tensor {
        &self.learner.ctx
    }

    fn evaluate(
        &self,
        clip: &Clip,
        cache: &FeatureCache,
        weights_digest: &str,
        spec: &RunSpec,
        set: &EvalSet,
    ) -> Result<EvalResult, RunError> {
        let other = self.for_classes(clip, &Tokenizer::new(), &set.classnames)?;
        Ok(evaluate_with(
            clip,
            cache,
            weights_digest,
            spec,
            set,
            |img| other.eval_logits(clip, img),
        )?)
    }
}

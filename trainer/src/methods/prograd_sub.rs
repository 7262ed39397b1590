//! ProGrad+SubPT: ProGrad's update (the rule first, on whole gradients) projected onto the
//! subspace of ProGrad's early trajectory.
use super::learner::{GradientRule, PromptTerm};
use super::{coop::train_prompts, prograd, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;
use crate::engine::spec::{Method, RunSpec};

pub struct ProgradSub;

impl MethodDef for ProgradSub {
    fn name(&self) -> &'static str {
        "prograd_sub"
    }

    fn paper_name(&self) -> &'static str {
        "ProGrad+SubPT"
    }

    fn uses_prograd(&self) -> bool {
        true
    }

    fn uses_subspace(&self) -> bool {
        true
    }

    fn trajectory_source(&self) -> Option<Method> {
        Some(Method::Prograd)
    }

    fn prompt_terms(
        &self,
        cx: &TrainCx,
        classnames: &[String],
    ) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
        prograd::terms(cx, classnames)
    }

    fn gradient_rule(&self, spec: &RunSpec) -> Result<Option<Box<dyn GradientRule>>, RunError> {
        prograd::rule(spec)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

//! KgCoOp+SubPT: KgCoOp with its gradients projected onto the subspace of KgCoOp's early
//! trajectory.
use super::learner::PromptTerm;
use super::{coop::train_prompts, kgcoop, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;
use crate::engine::spec::Method;

pub struct KgcoopSub;

impl MethodDef for KgcoopSub {
    fn name(&self) -> &'static str {
        "kgcoop_sub"
    }

    fn paper_name(&self) -> &'static str {
        "KgCoOp+SubPT"
    }

    fn uses_kg(&self) -> bool {
        true
    }

    fn uses_subspace(&self) -> bool {
        true
    }

    fn trajectory_source(&self) -> Option<Method> {
        Some(Method::Kgcoop)
    }

    fn prompt_terms(
        &self,
        cx: &TrainCx,
        classnames: &[String],
    ) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
        kgcoop::terms(cx, classnames)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

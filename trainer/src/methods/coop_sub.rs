//! SubPT: CoOp with every gradient projected onto the top-r PCA subspace of CoOp's early trajectory.
use super::{coop::train_prompts, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;
use crate::engine::spec::Method;

pub struct CoopSub;

impl MethodDef for CoopSub {
    fn name(&self) -> &'static str {
        "coop_sub"
    }

    fn paper_name(&self) -> &'static str {
        "SubPT"
    }

    fn uses_subspace(&self) -> bool {
        true
    }

    fn trajectory_source(&self) -> Option<Method> {
        Some(Method::Coop)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

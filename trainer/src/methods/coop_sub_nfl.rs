//! SubPT+NFL: CoOp+NFL with its gradients projected onto the subspace of CoOp+NFL's early trajectory.
use super::{coop::train_prompts, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;
use crate::engine::spec::Method;

pub struct CoopSubNfl;

impl MethodDef for CoopSubNfl {
    fn name(&self) -> &'static str {
        "coop_sub_nfl"
    }

    fn paper_name(&self) -> &'static str {
        "SubPT+NFL"
    }

    fn uses_nfl(&self) -> bool {
        true
    }

    fn uses_subspace(&self) -> bool {
        true
    }

    fn trajectory_source(&self) -> Option<Method> {
        Some(Method::CoopNfl)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

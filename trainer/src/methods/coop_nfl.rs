//! CoOp+NFL: CoOp with NFL's loss (the learned prompts' text features of extra names kept near zero-shot CLIP's).
use super::{coop::train_prompts, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;

pub struct CoopNfl;

impl MethodDef for CoopNfl {
    fn name(&self) -> &'static str {
        "coop_nfl"
    }

    fn paper_name(&self) -> &'static str {
        "CoOp+NFL"
    }

    fn uses_nfl(&self) -> bool {
        true
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

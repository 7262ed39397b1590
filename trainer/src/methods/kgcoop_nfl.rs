//! KgCoOp+NFL: KgCoOp with NFL's loss on the extra names (KgCoOp's term holds the trained
//! classes' features, NFL's the names no image shows).
use super::learner::PromptTerm;
use super::{coop::train_prompts, kgcoop, MethodDef, TrainCx, Trained};
use crate::engine::error::RunError;

pub struct KgcoopNfl;

impl MethodDef for KgcoopNfl {
    fn name(&self) -> &'static str {
        "kgcoop_nfl"
    }

    fn paper_name(&self) -> &'static str {
        "KgCoOp+NFL"
    }

    fn uses_kg(&self) -> bool {
        true
    }

    fn uses_nfl(&self) -> bool {
        true
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

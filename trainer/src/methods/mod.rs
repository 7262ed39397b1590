//! The prompt-learning methods: CoOp, CoCoOp, NFL and subspace projection (SubPT).
pub mod cocoop;
pub mod coop;
pub mod nfl;
pub mod prompt_learner;
pub mod subspace;
pub mod zeroshot;

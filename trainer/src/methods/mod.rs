//! The paper's methods: subspace projection (SubPT) so far.
pub mod coop;
pub mod nfl;
pub mod prompt_learner;
pub mod subspace;
pub mod zeroshot;

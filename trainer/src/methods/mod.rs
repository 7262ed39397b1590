//! The paper's methods: subspace projection (SubPT) so far.
pub mod prompt_learner;
pub mod subspace;

//! The paper's methods: subspace projection (SubPT) so far.
pub mod subspace;

//! One cell from spec to result: SGD with PyTorch's semantics, the CoOp schedule, the training
//! loop and test-split evaluation.
pub mod artefacts;
pub mod error;
pub mod eval;
pub mod group;
pub mod inputs;
pub mod optim;
pub mod presets;
pub mod problems;
pub mod result;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod train;
pub mod warm;

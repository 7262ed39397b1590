//! Optimisation: SGD with PyTorch's semantics and the CoOp learning-rate schedule.
pub mod optim;
pub mod schedule;

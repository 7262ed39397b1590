//! Datasets in CoOp's layout and Dassl's sampling rules.
pub mod image;
pub mod loader;
pub mod transforms;

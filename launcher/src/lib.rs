//! Library side of the launcher: grids of benchmark cells and their scheduling.
pub mod grid;

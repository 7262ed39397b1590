//! Library side of the launcher: grids of benchmark cells, their scheduling and the report.
pub mod grid;
pub mod ranks;
pub mod report;

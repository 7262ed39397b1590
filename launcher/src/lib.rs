//! Library side of the launcher: what the command line and the tests share.
pub mod report;

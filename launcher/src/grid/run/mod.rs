//! How to run it: the scheduler, one process or MPI rank groups, the claims that let several
//! processes share an output directory, progress lines and what a stopped grid prints.
pub mod claim;
pub(crate) mod dispatch;
pub mod execute;
pub mod interrupt;
pub mod progress;
pub mod scheduler;

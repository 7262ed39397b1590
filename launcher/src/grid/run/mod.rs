//! How to run it: the scheduler, one process or MPI rank groups, the output-directory lock,
//! progress lines and what a stopped grid prints.
pub(crate) mod dispatch;
pub mod execute;
pub mod interrupt;
pub mod lock;
pub mod progress;
pub mod scheduler;

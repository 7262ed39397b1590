//! The trainer's suites that share no process-wide state (libtorch's global generator, the
//! views store's switch), in one test binary: each binary links libtorch, so one link instead
//! of fifteen. The suites that seed libtorch or switch the views store keep binaries of their
//! own, so tests running side by side cannot reseed each other.
//! `cargo test -p subpt-trainer --test suite torch_archive::` runs one suite.
mod clip_weights;
mod common;
mod data_fewshot_cache;
mod data_readers;
mod data_verify;
mod fewshot_oracle;
mod fewshot_pickle;
mod fuzz_readers;
mod loader;
mod nccl;
mod optim_oracle;
mod split_features;
mod torch_archive;
mod warm_features;

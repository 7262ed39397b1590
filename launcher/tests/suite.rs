//! The launcher's end-to-end suites, in one test binary (each binary links libtorch: one link
//! instead of ten). One module per suite, named as the file it lives in:
//! `cargo test -p subpt-bench --test suite grid_mpi::` runs one.
mod common;
mod dp;
mod fuzz_grid;
mod grid_execute;
mod grid_mpi;
mod paper_claims;
mod remedies;
mod report;
mod report_claims;
mod report_protocols;
mod report_variants;
mod result_identity;
mod shards;
mod shipped_model;
mod traceability;

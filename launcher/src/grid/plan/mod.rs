//! What to run: the grid file, its overrides, the cells and their dependencies, their cost,
//! and the dry run that lists them.
pub(crate) mod config;
pub(crate) mod cost;
pub(crate) mod dryrun;
pub(crate) mod expand;
pub(crate) mod overrides;
pub mod shard;
pub(crate) mod yaml_lines;

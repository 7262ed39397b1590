//! Datasets in CoOp's layout and Dassl's sampling rules.
//!
//! - `catalog`: the dataset table (directories, split sources, class counts, templates).
//! - `readers`: every layout into `DatasetSplits` (`train`/`val`/`test` lists of `Item`s).
//! - `python_random` (the `subpt-pyrandom` crate): CPython's `random.Random`, so `fewshot`
//!   draws Dassl's exact subsets.
//! - `fewshot`, `fewshot_cache`: K-shot sampling and Dassl's `split_fewshot/` cache.
//! - `subsample`: base / new class halves with relabelling.
//! - `verify`, `fashion_mnist`: dataset checks, the embedded dataset.
//! - `fixtures` (feature `test-support`, for tests only): tiny datasets in every layout.
//! - `image`, `transforms` (the `subpt-imaging` crate), `loader`: decoding, Dassl's
//!   transforms, batches.
pub mod catalog;
pub mod corruption;
pub mod error;
pub mod fashion_mnist;
pub mod fewshot;
pub mod fewshot_cache;
pub mod fewshot_pickle;
#[cfg(feature = "test-support")]
pub mod fixtures;
pub mod loader;
pub mod readers;
pub mod shapes;
pub mod splits;
pub mod subsample;
pub mod verify;

/// Decoding as PIL decodes and Dassl's transforms, a crate of its own.
pub use subpt_imaging::{image, transforms};
/// CPython's `random.Random`, a crate of its own.
pub use subpt_pyrandom as python_random;

pub use catalog::{DatasetInfo, DatasetName, SplitSource, DATASETS};
pub use error::DataError;
pub use fewshot::{draw_fewshot, FewshotSubset};
pub use fewshot_cache::{load_or_draw_fewshot, CacheMode, FewshotSource};
pub use python_random::PyRandom;
pub use readers::{read_dataset, read_dataset_lists};
pub use splits::{DatasetSplits, Item, Split};
pub use subsample::{subsample_classes, SubsampleClasses};
pub use verify::{verify, VerifyReport};

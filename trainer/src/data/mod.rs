//! Datasets in CoOp's layout and Dassl's sampling rules.
//!
//! - `catalog`: the dataset table (directories, split sources, class counts, templates).
//! - `readers`: every layout into `DatasetSplits` (`train`/`val`/`test` lists of `Item`s).
//! - `python_random`: CPython's `random.Random`, so `fewshot` draws Dassl's exact subsets.
//! - `fewshot`, `fewshot_cache`: K-shot sampling and Dassl's `split_fewshot/` cache.
//! - `subsample`: base / new class halves with relabelling.
//! - `verify`, `fashion_mnist`, `fixtures`: dataset checks, the embedded dataset, tiny test data.
pub mod catalog;
pub mod error;
pub mod python_random;
pub mod readers;
pub mod splits;

pub use catalog::{DatasetInfo, DatasetName, SplitSource, DATASETS};
pub use error::DataError;
pub use python_random::PyRandom;
pub use readers::{read_dataset, read_dataset_lists};
pub use splits::{DatasetSplits, Item, Split};

//! Errors of the dataset layer. Every variant names the file or directory involved.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("unknown dataset {name:?} (known: {known})")]
    UnknownDataset { name: String, known: String },
    #[error("dataset root {path} does not exist or is not a directory")]
    MissingRoot { path: PathBuf },
    #[error("dataset directory {path} (dataset {dataset}) does not exist")]
    MissingDatasetDir { dataset: String, path: PathBuf },
    #[error("missing directory {path}")]
    MissingDir { path: PathBuf },
    #[error("missing split file {path}")]
    MissingSplitFile { path: PathBuf },
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    #[error("{path}: malformed JSON: {detail}")]
    MalformedJson { path: PathBuf, detail: String },
    #[error("{path}: split {split:?}, entry {index}: {detail}")]
    MalformedEntry {
        path: PathBuf,
        split: String,
        index: usize,
        detail: String,
    },
    #[error("{path}:{line}: {detail}")]
    MalformedLine {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("missing image file {path}")]
    MissingImage { path: PathBuf },
    #[error("{path}: label {label} is named both {first:?} and {second:?}")]
    ClassnameConflict {
        path: PathBuf,
        label: usize,
        first: String,
        second: String,
    },
    #[error("{path}: split {split:?}, entry {index}: label {label} out of range (the training list has {num_classes} classes)")]
    LabelOutOfRange {
        path: PathBuf,
        split: String,
        index: usize,
        label: usize,
        num_classes: usize,
    },
    #[error("{path}: the training list has no item of label {label} (labels must be 0..{num_classes} without gaps)")]
    MissingClass {
        path: PathBuf,
        label: usize,
        num_classes: usize,
    },
    #[error("{path}: {name:?} is not listed in {list}")]
    UnknownClass {
        path: PathBuf,
        name: String,
        list: PathBuf,
    },
    #[error("class folders differ between {first} and {second}: {detail}")]
    FolderMismatch {
        first: PathBuf,
        second: PathBuf,
        detail: String,
    },
    #[error("path {path} is not valid UTF-8")]
    NonUtf8Path { path: PathBuf },
    #[error("dataset {dataset} is test-only: it has no training split to sample shots from")]
    TestOnly { dataset: String },
    #[error("few-shot cache {path}: {detail}")]
    CacheMismatch { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Pickle { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    MalformedIdx { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: cannot write JSON: {detail}")]
    WriteJson { path: PathBuf, detail: String },
    #[error("dataset {dataset} has no pattern rule for a rule key to set (shapes_ruled has)")]
    NoPatternRule { dataset: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io(crate::io::IoError::new(path, source))
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

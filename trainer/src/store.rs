//! The cell store: the layout of one cell's directory under a grid's output directory, the
//! name of every file in it, how results and failure records are written (atomically, through
//! `io`) and read back, and the done-check. Everything that reads or writes a cell directory
//! goes through [`CellDir`].
//!
//! ```text
//! <output_dir>/<cell id>/
//!   result.json              RunResult of a training or evaluation cell (written last)
//!   features.json            record of a feature cell
//!   failure.json             why the cell's last attempt failed (removed when it is retried)
//!   context.safetensors      the learned context (and CoCoOp's meta-network)
//!   trajectory.safetensors   theta0 and the context after every epoch
//! <output_dir>/.claims/<cell id>   held while a process runs the cell (the launcher's claims)
//! ```
use crate::io::IoError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const RESULT: &str = "result.json";
pub const FEATURES: &str = "features.json";
pub const FAILURE: &str = "failure.json";
pub const CONTEXT: &str = "context.safetensors";
pub const TRAJECTORY: &str = "trajectory.safetensors";
/// The directory of the cells' claims under an output directory.
pub const CLAIMS: &str = ".claims";

/// What a stored result's numbers are a function of (computed by `engine::inputs`): the spec
/// without the feature cache and output directory, a version of the numerics, and content
/// digests of the weights, of every item list read and of the trained files loaded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    /// `RunSpec::hash`.
    pub spec: String,
    pub numerics: u32,
    /// SHA-256 of the weights file.
    pub weights: String,
    /// Digests of the item lists read: `train` (the few-shot subset of the trained classes)
    /// and `test:<subset>` per evaluated class subset.
    pub items: BTreeMap<String, String>,
    /// SHA-256 of trained files read: `trajectory` (SubPT), `context` (evaluations).
    pub files: BTreeMap<String, String>,
}

/// The failure record of a cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
    pub spec: serde_json::Value,
}

/// One cell's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellDir(PathBuf);

/// The field of a feature cell's record the done-check reads.
#[derive(Deserialize)]
struct Stored {
    identity: Option<Identity>,
}

impl CellDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CellDir(path.into())
    }

    /// The directory of cell `id` below `output_dir`.
    pub fn of(output_dir: &Path, id: &str) -> Self {
        CellDir(output_dir.join(id))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn context(&self) -> PathBuf {
        self.file(CONTEXT)
    }

    pub fn trajectory(&self) -> PathBuf {
        self.file(TRAJECTORY)
    }

    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)
    }

    /// Writes `value` as pretty JSON to `name`, atomically.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<(), IoError> {
        let path = self.file(name);
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| IoError::new(&path, std::io::Error::other(e)))?;
        crate::io::write_atomic(&path, text.as_bytes())
    }

    /// Reads `name` as `T`; `None` when it is missing or does not parse.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let text = std::fs::read_to_string(self.file(name)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records why the cell failed (best effort: the error is also reported to the caller).
    pub fn write_failure(&self, id: &str, error: &str, spec: &impl Serialize) {
        let record = Failure {
            id: id.into(),
            error: error.into(),
            spec: serde_json::to_value(spec).unwrap_or_default(),
        };
        if let Err(e) = self.write_json(FAILURE, &record) {
            tracing::warn!("{}: {e}", self.file(FAILURE).display());
        }
    }

    pub fn clear_failure(&self) {
        let _ = std::fs::remove_file(self.file(FAILURE));
    }

    pub fn failure(&self) -> Option<Failure> {
        self.read_json(FAILURE)
    }

    /// Whether `record` (a feature cell's features.json) was written with identity `expected`.
    /// Results are checked by `RunResult::check_done`, the rule the report shares.
    pub fn holds(&self, record: &str, expected: &Identity) -> bool {
        self.read_json::<Stored>(record)
            .is_some_and(|s| s.identity.as_ref() == Some(expected))
    }
}

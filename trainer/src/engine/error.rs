//! Why a cell failed: every error a run can end with, each naming what it is about.
use crate::clip::ClipError;
use crate::data::DataError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("spec: {0}")]
    Spec(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Clip(#[from] ClipError),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Load(#[from] crate::data::loader::LoadError),
    #[error(transparent)]
    Transform(#[from] crate::data::transforms::TransformError),
    #[error(transparent)]
    Subspace(#[from] crate::methods::subspace::SubspaceError),
    #[error(transparent)]
    Comm(#[from] crate::comm::CommError),
    #[error("training diverged at epoch {epoch}, batch {batch}: {what} is not finite")]
    NonFinite {
        epoch: usize,
        batch: usize,
        what: &'static str,
    },
    /// A panic inside libtorch or our code, caught so one cell cannot take down a grid.
    #[error("internal error: {0}")]
    Panic(String),
    #[error("{failures} other rank(s) of the data-parallel group failed at the same step")]
    PeerFailed { failures: usize },
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
}

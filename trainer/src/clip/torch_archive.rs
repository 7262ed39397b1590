//! Reader for PyTorch zip archives: `torch.save` checkpoints and TorchScript modules
//! (placeholder API; implementation pending).
use std::path::Path;

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

/// A tensor read from an archive: contiguous row-major little-endian bytes.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Every tensor in the archive with its dotted key (state-dict keys for TorchScript modules).
pub fn read_tensors(_path: &Path) -> Result<Vec<(String, RawTensor)>, ArchiveError> {
    unimplemented!()
}

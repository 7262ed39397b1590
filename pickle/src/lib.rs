//! Safe reading and writing of Python pickles as plain [`Value`] trees.
//!
//! Reading runs the pickle opcode machine of protocols 0 to 5 (everything CPython and torch emit,
//! except extension codes and protocol-5 out-of-band buffers) but never imports or calls anything:
//! `GLOBAL` yields a [`Value::Global`] naming the class or function, and `REDUCE`, `NEWOBJ`,
//! `NEWOBJ_EX`, `INST`, `OBJ`, `BUILD`, and `APPEND`/`SETITEM` on such objects are recorded in an
//! [`Object`]. Interpreting `torch._utils._rebuild_tensor_v2` or `collections.OrderedDict` is the
//! caller's business; [`torch_archive`] does it for PyTorch's checkpoint formats.
//!
//! Shared references (memo `GET`s) are copied into the tree; self-referencing structures are
//! rejected. Python 2 module names `__builtin__` and `copy_reg` are reported as `builtins` and
//! `copyreg`, as Python 3's unpickler does.
//!
//! Writing produces protocol 2, which every Python 3 loads:
//!
//! ```
//! use subpt_pickle as pickle;
//! use pickle::{Object, Value};
//! let datum = Value::Object(Box::new(Object::new_obj(
//!     Value::global("dassl.data.datasets.base_dataset", "Datum"),
//!     Some(Value::Dict(vec![
//!         (Value::str("_impath"), Value::str("/data/a.jpg")),
//!         (Value::str("_label"), Value::Int(3)),
//!     ])),
//! )));
//! let bytes = pickle::write(&Value::List(vec![datum.clone()])).unwrap();
//! assert_eq!(pickle::read(&bytes).unwrap(), Value::List(vec![datum]));
//! ```
mod arena;
mod reader;
mod text;
pub mod torch_archive;
mod value;
mod writer;

pub use value::{Constructor, Object, Value};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    /// The bytes are not a pickle this reader can decode.
    #[error("malformed pickle at byte {offset}: {msg}")]
    Malformed { offset: usize, msg: String },
    /// The bytes decoded, but something followed the `STOP` opcode.
    #[error("{extra} unexpected bytes after the end of the pickle")]
    TrailingData { extra: usize },
    #[error("cannot write pickle: {0}")]
    Unwritable(String),
    /// An error of the above kinds, with the file it came from.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<PickleError>,
    },
    #[error(transparent)]
    Io(#[from] subpt_io::IoError),
}

/// Decodes one pickle that must span all of `data`.
pub fn read(data: &[u8]) -> Result<Value, PickleError> {
    let (v, used) = read_prefix(data)?;
    if used != data.len() {
        return Err(PickleError::TrailingData {
            extra: data.len() - used,
        });
    }
    Ok(v)
}

/// Decodes the pickle at the start of `data` and returns how many bytes it took, for streams of
/// several pickles (torch's legacy checkpoint format).
pub fn read_prefix(data: &[u8]) -> Result<(Value, usize), PickleError> {
    reader::read_prefix(data)
}

/// Encodes `value` as a protocol-2 pickle.
pub fn write(value: &Value) -> Result<Vec<u8>, PickleError> {
    writer::write(value)
}

/// Reads and decodes a pickle file; errors name the file.
pub fn read_file(path: &Path) -> Result<Value, PickleError> {
    let data = subpt_io::read(path)?;
    read(&data).map_err(|e| PickleError::File {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests;

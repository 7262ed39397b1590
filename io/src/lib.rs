//! Files for every crate of the workspace: one I/O error type that names its file, and
//! crash-safe output (write beside the target, then rename, so readers never see a half-written
//! result and a killed process leaves the previous version intact).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An I/O failure and the file or directory it concerned. Every error type of the workspace
/// holds its I/O failures as this, so each message names the path.
///
/// The OS error is part of the message and not reported as a separate cause: a message printed
/// with its chain of causes (`{:#}`) would otherwise say it twice.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct IoError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl IoError {
    pub fn new(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        IoError {
            path: path.into(),
            error,
        }
    }

    pub fn kind(&self) -> std::io::ErrorKind {
        self.error.kind()
    }
}

/// `.at(path)` attaches the path to a `std::io::Result`.
pub trait AtPath<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> AtPath<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(path.as_ref(), source))
    }
}

/// `std::fs::read`, naming the file on failure.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, IoError> {
    std::fs::read(path.as_ref()).at(path)
}

/// `std::fs::read_to_string`, naming the file on failure.
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, IoError> {
    std::fs::read_to_string(path.as_ref()).at(path)
}

/// A temporary path in the same directory (rename is atomic only within one filesystem),
/// unique per process and call so concurrent writers of one target never share it.
fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

fn create_parent(path: &Path) -> Result<(), IoError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).at(dir),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    with_atomic_path(path, |tmp| {
        let mut f = std::fs::File::create(tmp).at(path)?;
        f.write_all(bytes).and_then(|()| f.sync_all()).at(path)
    })
}

/// Runs `write` against a temporary path, then renames it to `path`.
pub fn with_atomic_path<E: From<IoError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    create_parent(path)?;
    let tmp = temp_path_for(path);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // On failure nothing is left beside `path`.
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        IoError::new(path, e)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/result.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn errors_name_their_file_once() {
        let e = read("/no/such/dir/weights.pt").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(
            e.to_string().starts_with("/no/such/dir/weights.pt: "),
            "{e}"
        );
        // The OS error is in the message, not repeated as a cause.
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way: rename(2) cannot replace a non-empty directory by a file.
        let target = dir.path().join("result.json");
        std::fs::create_dir_all(target.join("occupied")).unwrap();
        let e = write_atomic(&target, b"x").unwrap_err();
        assert!(e.to_string().contains("result.json"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the directory in the way remains");
    }

    #[test]
    fn failed_writer_keeps_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.bin");
        write_atomic(&p, b"good").unwrap();
        let r: Result<(), IoError> = with_atomic_path(&p, |tmp| {
            std::fs::write(tmp, b"partial").at(tmp)?;
            Err(IoError::new(tmp, std::io::Error::other("killed")))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

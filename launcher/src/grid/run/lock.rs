//! One grid run per output directory: an advisory lock (`flock`) on `<output>/.lock`, held for
//! the whole run. The kernel drops it when the holder exits, however it dies, so a lock file
//! left by a crashed run never blocks the next one; the file's text only says who holds it.
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while alive; dropping it (or the process ending) releases the directory.
pub struct OutputLock {
    _file: File,
}

pub fn lock_path(output_dir: &Path) -> PathBuf {
    output_dir.join(".lock")
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

/// Takes the lock of `output_dir` (created if missing), or says who holds it.
pub fn acquire(output_dir: &Path) -> Result<OutputLock, String> {
    let path = lock_path(output_dir);
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(output_dir).map_err(fail)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let holder = format!(
                "pid {} on {}, started at unix time {since}\n",
                std::process::id(),
                host()
            );
            file.set_len(0).map_err(fail)?;
            file.rewind().map_err(fail)?;
            file.write_all(holder.as_bytes()).map_err(fail)?;
            Ok(OutputLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(format!(
                "{}: another grid run is using this output directory ({}); wait for it to \
                 finish or pass another --out",
                output_dir.display(),
                if holder.is_empty() {
                    "holder unknown"
                } else {
                    holder
                }
            ))
        }
        Err(TryLockError::Error(e)) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("runs");
        // A file left by a run that died holds no lock: it is taken over.
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(lock_path(&out), "pid 1 on gone\n").unwrap();
        let held = acquire(&out).unwrap();
        let text = std::fs::read_to_string(lock_path(&out)).unwrap();
        assert!(
            text.starts_with(&format!("pid {} on ", std::process::id())),
            "{text}"
        );
        let e = acquire(&out).err().expect("already held");
        assert!(
            e.contains("another grid run") && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        drop(held);
        acquire(&out).unwrap();
    }
}

//! Content digests: of serialisable values (cache keys, run identities), of item lists and of
//! files (weights, trajectories, contexts). Every digest is hex SHA-256.
//!
//! Files are digested whole, streamed in 1 MiB blocks: a 600 MB checkpoint costs about a second,
//! paid once per process. Sampling a few blocks would be faster but would miss an edit in the
//! middle of a tensor, and a result is only worth its identity. Within one process a file is
//! digested once and then trusted while its device, inode, size and modification time stay
//! the same: a replaced file (new inode, or rewritten with a new mtime) is digested again. A
//! grid run digests every file it checks up front, and under MPI rank 0 hands its table to the
//! other ranks ([`export_memo`], [`import_memo`]), so each file is read once per grid run.
use crate::data::Item;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Hex SHA-256 of any serialisable value (its canonical JSON).
pub fn digest_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("digested values serialise");
    hex(&Sha256::digest(&json))
}

/// Hex SHA-256 of bytes.
pub fn bytes_digest(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of an ordered item list: what each item is (its path below the image root, label
/// and class name), independent of where the data root sits on this machine.
pub fn items_digest(items: &[Item]) -> String {
    let list: Vec<(&str, usize, &str)> = items
        .iter()
        .map(|i| (i.relpath.as_str(), i.label, i.classname.as_str()))
        .collect();
    digest_json(&list)
}

/// What identifies a file's version on disk without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
struct Stamp {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: u128,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Stamp {
        path: std::fs::canonicalize(path)?,
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime_ns,
    })
}

fn memo() -> &'static Mutex<HashMap<Stamp, String>> {
    static MEMO: std::sync::OnceLock<Mutex<HashMap<Stamp, String>>> = std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// Hex SHA-256 of a file's content (see the module notes for when it is read again).
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    let key = stamp(path)?;
    if let Some(d) = memo().lock().expect("digest memo").get(&key) {
        return Ok(d.clone());
    }
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let d = hex(&h.finalize());
    memo().lock().expect("digest memo").insert(key, d.clone());
    Ok(d)
}

/// The digests this process knows, as JSON, for ranks that share the same files.
pub fn export_memo() -> String {
    let m = memo().lock().expect("digest memo");
    serde_json::to_string(&m.iter().collect::<Vec<_>>()).expect("digest memo serialises")
}

/// Adopts digests another process computed; entries whose file has changed since simply
/// never match.
pub fn import_memo(json: &str) {
    if let Ok(v) = serde_json::from_str::<Vec<(Stamp, String)>>(json) {
        memo().lock().expect("digest memo").extend(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_digest_is_sha256_and_sees_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.bin");
        std::fs::write(&f, b"abc").unwrap();
        let d = file_digest(&f).unwrap();
        assert_eq!(
            d,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(file_digest(&f).unwrap(), d);
        // Same size, replaced by a rename (what `cp new tmp && mv tmp w.bin` does).
        let tmp = dir.path().join("new.bin");
        std::fs::write(&tmp, b"abd").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert_ne!(file_digest(&f).unwrap(), d);
    }

    #[test]
    fn memo_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.bin");
        std::fs::write(&f, b"x").unwrap();
        let d = file_digest(&f).unwrap();
        let json = export_memo();
        memo().lock().unwrap().clear();
        import_memo(&json);
        assert_eq!(memo().lock().unwrap().get(&stamp(&f).unwrap()), Some(&d));
    }
}

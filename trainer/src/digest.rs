//! Content digests: of serialisable values (cache keys, run identities), of item lists (every
//! image's bytes) and of files (weights, images, trajectories, contexts). Every digest is hex
//! SHA-256.
//!
//! Files are digested whole, streamed in 1 MiB blocks: a 600 MB checkpoint costs about a second.
//! Sampling a few blocks would be faster but would miss an edit in the middle of a tensor, and
//! a result is only worth its identity. A file is digested again only when its stamp changes:
//! device, inode, size, modification and status-change times in ns, as git's index keeps them
//! (the status-change time catches an in-place rewrite that restored the old mtime). Stamps and
//! digests live in memory for the process and, once [`use_index`] names a file (the grid and
//! `train` put it in the feature cache), on disk across runs, so a rerun over a million images
//! costs a `stat` per image, not a read. Under MPI rank 0 also hands its table to the other
//! ranks ([`export_memo`], [`import_memo`]).
use crate::data::Item;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
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

/// Digest of an ordered item list by content: each item's path below the image root, label,
/// class name and the SHA-256 of its file. Where the data root sits (moved, or reached through
/// a symlink) does not change it; a changed pixel does.
pub fn items_digest(items: &[Item]) -> Result<String, crate::io::IoError> {
    use rayon::prelude::*;
    // Stats (and, the first time, reads) overlap across threads; the order is the list's.
    let list = items
        .par_iter()
        .map(|i| {
            let d = file_digest(&i.impath).map_err(|e| crate::io::IoError::new(&i.impath, e))?;
            Ok((i.relpath.as_str(), i.label, i.classname.as_str(), d))
        })
        .collect::<Result<Vec<_>, crate::io::IoError>>()?;
    Ok(digest_json(&list))
}

/// What identifies a file's version on disk without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
    })
}

/// The digests known to this process, and the on-disk index new ones are appended to.
#[derive(Default)]
struct Memo {
    known: HashMap<Stamp, [u8; 32]>,
    index: Option<Index>,
}

fn memo() -> &'static Mutex<Memo> {
    static MEMO: std::sync::OnceLock<Mutex<Memo>> = std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// Hex SHA-256 of a file's content (see the module notes for when it is read again).
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    let key = stamp(path)?;
    if let Some(d) = memo().lock().expect("digest memo").known.get(&key) {
        return Ok(hex(d));
    }
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    let d: [u8; 32] = h.finalize().into();
    // A file written while it was read has a new stamp now: record nothing for it.
    if stamp(path)? == key {
        let mut m = memo().lock().expect("digest memo");
        m.known.insert(key, d);
        if let Some(ix) = m.index.as_mut() {
            ix.append(&key, &d);
        }
    }
    Ok(hex(&d))
}

/// The digests this process knows, as JSON, for ranks that share the same files.
pub fn export_memo() -> String {
    let m = memo().lock().expect("digest memo");
    let list: Vec<(&Stamp, String)> = m.known.iter().map(|(s, d)| (s, hex(d))).collect();
    serde_json::to_string(&list).expect("digest memo serialises")
}

/// Adopts digests another process computed; entries whose file has changed since simply
/// never match.
pub fn import_memo(json: &str) {
    let Ok(v) = serde_json::from_str::<Vec<(Stamp, String)>>(json) else {
        return;
    };
    let mut m = memo().lock().expect("digest memo");
    for (s, d) in v {
        if let Some(d) = unhex(&d) {
            m.known.insert(s, d);
        }
    }
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The on-disk digest index: a header, then fixed-size records (stamp, digest, and a check
/// of both), appended by every process that digests a file, one `write` per record on a file
/// opened for appending, so concurrent writers interleave whole records. A record whose check
/// fails (a torn write, a corrupt block) ends what is read; the file is then rewritten from
/// the records before it.
struct Index {
    path: PathBuf,
    file: Option<std::fs::File>,
}

const INDEX_MAGIC: &[u8; 8] = b"SUBPTFD1";
const RECORD: usize = 5 * 8 + 32 + 4;

fn encode(s: &Stamp, d: &[u8; 32]) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    let fields = [s.dev, s.ino, s.len, s.mtime_ns as u64, s.ctime_ns as u64];
    for (i, f) in fields.iter().enumerate() {
        r[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
    }
    r[40..72].copy_from_slice(d);
    let check = Sha256::digest(&r[..72]);
    r[72..].copy_from_slice(&check[..4]);
    r
}

fn decode(r: &[u8]) -> Option<(Stamp, [u8; 32])> {
    if r.len() != RECORD || Sha256::digest(&r[..72])[..4] != r[72..] {
        return None;
    }
    let u = |i: usize| u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let stamp = Stamp {
        dev: u(0),
        ino: u(1),
        len: u(2),
        mtime_ns: u(3) as i64,
        ctime_ns: u(4) as i64,
    };
    Some((stamp, r[40..72].try_into().expect("32 bytes")))
}

impl Index {
    fn append(&mut self, s: &Stamp, d: &[u8; 32]) {
        let Some(f) = self.file.as_mut() else { return };
        if let Err(e) = f.write_all(&encode(s, d)) {
            // The index only saves time: without it files are digested again next run.
            tracing::warn!(path = %self.path.display(), error = %e, "file-digest index not updated; digests will be recomputed next run");
            self.file = None;
        }
    }
}

/// Reads the digest index at `path` (creating it if absent) and appends every digest this
/// process computes from now on to it. Without a writable index, digests stay in memory.
pub fn use_index(path: &Path) {
    let mut m = memo().lock().expect("digest memo");
    if m.index.as_ref().is_some_and(|ix| ix.path == path) {
        return;
    }
    let bytes = std::fs::read(path).unwrap_or_default();
    let (good, clean) = if bytes.len() >= 8 && &bytes[..8] == INDEX_MAGIC {
        let body = &bytes[8..];
        let records: Vec<_> = body.chunks(RECORD).map_while(decode).collect();
        let clean = records.len() * RECORD == body.len();
        (records, clean)
    } else {
        (Vec::new(), bytes.is_empty())
    };
    if !clean {
        tracing::warn!(path = %path.display(), kept = good.len(), "file-digest index damaged; rewritten from its readable records");
        let mut out = INDEX_MAGIC.to_vec();
        for (s, d) in &good {
            out.extend_from_slice(&encode(s, d));
        }
        let _ = crate::io::write_atomic(path, &out);
    }
    m.known.extend(good);
    let open = || -> std::io::Result<std::fs::File> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if f.metadata()?.len() == 0 {
            f.write_all(INDEX_MAGIC)?;
        }
        Ok(f)
    };
    let file = match open() {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "file-digest index not writable; digests are kept for this run only");
            None
        }
    };
    m.index = Some(Index {
        path: path.to_path_buf(),
        file,
    });
}

/// The index file's name inside a feature cache directory.
pub const INDEX_FILE: &str = "file-digests.bin";

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that clear the process's memo run one at a time.
    static MEMO_TESTS: Mutex<()> = Mutex::new(());

    fn forget() {
        let mut m = memo().lock().unwrap();
        m.known.clear();
        m.index = None;
    }

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
    fn an_in_place_rewrite_with_the_old_mtime_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("img.png");
        std::fs::write(&f, b"pixels-1").unwrap();
        let before = file_digest(&f).unwrap();
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f, b"pixels-2").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_ne!(file_digest(&f).unwrap(), before);
    }

    #[test]
    fn memo_round_trips() {
        let _one = MEMO_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.bin");
        std::fs::write(&f, b"x").unwrap();
        let d = file_digest(&f).unwrap();
        let json = export_memo();
        memo().lock().unwrap().known.clear();
        import_memo(&json);
        let s = stamp(&f).unwrap();
        assert_eq!(
            memo().lock().unwrap().known.get(&s).map(|d| hex(d)),
            Some(d)
        );
    }

    #[test]
    fn the_index_persists_digests_and_survives_a_torn_record() {
        let _one = MEMO_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let ix = dir.path().join("cache").join(INDEX_FILE);
        let files: Vec<PathBuf> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("{i}.png"));
                std::fs::write(&p, format!("image {i}")).unwrap();
                p
            })
            .collect();
        forget();
        use_index(&ix);
        let digests: Vec<String> = files.iter().map(|f| file_digest(f).unwrap()).collect();
        let stamps: Vec<Stamp> = files.iter().map(|f| stamp(f).unwrap()).collect();
        let on_disk = |ix: &Path| -> Vec<Stamp> {
            let b = std::fs::read(ix).unwrap();
            assert_eq!(&b[..8], INDEX_MAGIC);
            assert_eq!((b.len() - 8) % RECORD, 0, "whole records only");
            b[8..]
                .chunks(RECORD)
                .map(|r| decode(r).unwrap().0)
                .collect()
        };
        assert!(stamps.iter().all(|s| on_disk(&ix).contains(s)));
        // A new process reads the index: what it holds is served without reading the file,
        // so a digest planted in the index is what comes back (the stamp is unchanged).
        forget();
        let mut bytes = std::fs::read(&ix).unwrap();
        let (s0, _) = decode(&bytes[8..8 + RECORD]).unwrap();
        bytes[8..8 + RECORD].copy_from_slice(&encode(&s0, &[7u8; 32]));
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&ix, &bytes).unwrap();
        use_index(&ix);
        assert_eq!(file_digest(&files[0]).unwrap(), hex(&[7u8; 32]));
        assert_eq!(file_digest(&files[1]).unwrap(), digests[1]);
        // The torn tail was cut off and the file rewritten whole (`on_disk` checks).
        assert!(stamps.iter().all(|s| on_disk(&ix).contains(s)));
        // A damaged record ends the readable part: files after it are digested again.
        forget();
        let mut bytes = std::fs::read(&ix).unwrap();
        bytes[8 + RECORD + 3] ^= 0xff;
        std::fs::write(&ix, &bytes).unwrap();
        use_index(&ix);
        {
            let m = memo().lock().unwrap();
            assert!(m.known.contains_key(&stamps[0]));
            assert!(!m.known.contains_key(&stamps[1]) && !m.known.contains_key(&stamps[2]));
        }
        assert_eq!(file_digest(&files[2]).unwrap(), digests[2]);
        forget();
    }
}

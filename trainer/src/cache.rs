//! Frozen-feature cache. The frozen encoders dominate evaluation cost, so anything they compute
//! (image features of a split, zero-shot text features of a class list) is stored once per key
//! and shared by every cell and every rank of a grid.
//!
//! An entry is `<hash>.safetensors` plus `<hash>.json` (the full key and the SHA-256 of the
//! data file, written last, so it marks the entry complete). The hash covers the whole key, so
//! changing any part of it (weights digest, dataset, split, items with their pixels, transform,
//! precision) misses and recomputes. A read checks the data file against its recorded digest
//! (a `stat` when the file-digest index already knows it, see `digest`): an entry whose bytes
//! changed is recomputed and replaced, with one warning naming it, never served. Writers use a
//! temporary file and a rename: concurrent ranks computing the same entry both succeed and
//! readers never see a partial file.
use crate::digest::digest_json;
use crate::io::{with_atomic_path, write_atomic, AtPath};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Bumped when the stored layout or the meaning of keys changes.
const CACHE_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("feature cache {0}")]
    Io(crate::io::IoError),
    #[error("feature cache {path}: {msg}")]
    Write { path: String, msg: String },
}

// By hand rather than `#[from]`, which would also report the wrapped error as the cause and
// print its message twice.
impl From<crate::io::IoError> for CacheError {
    fn from(e: crate::io::IoError) -> Self {
        CacheError::Io(e)
    }
}

/// What a cache lookup did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
}

pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FeatureCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths<K: Serialize>(&self, kind: &str, key: &K) -> (PathBuf, PathBuf, serde_json::Value) {
        let manifest = serde_json::json!({ "version": CACHE_VERSION, "kind": kind, "key": key });
        let h = digest_json(&manifest);
        let stem = format!("{kind}-{}", &h[..24]);
        (
            self.dir.join(format!("{stem}.safetensors")),
            self.dir.join(format!("{stem}.json")),
            manifest,
        )
    }

    /// The file stem of `key`'s entry (`<stem>.safetensors`, `<stem>.json`).
    pub fn entry_name<K: Serialize>(&self, kind: &str, key: &K) -> String {
        let (data, _, _) = self.paths(kind, key);
        data.file_stem()
            .expect("entries are files")
            .to_string_lossy()
            .into_owned()
    }

    /// Whether both files of the entry named `stem` are present.
    pub fn has_entry(&self, stem: &str) -> bool {
        ["safetensors", "json"]
            .iter()
            .all(|ext| self.dir.join(format!("{stem}.{ext}")).is_file())
    }

    /// The stored tensors for `key`, if a complete entry with exactly this key exists.
    pub fn lookup<K: Serialize>(&self, kind: &str, key: &K) -> Option<Vec<(String, Tensor)>> {
        let (data, meta, manifest) = self.paths(kind, key);
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&meta).ok()?).ok()?;
        if stored.get("manifest") != Some(&manifest) {
            return None;
        }
        let recorded = stored.get("payload_sha256").and_then(|v| v.as_str());
        match crate::digest::file_digest(&data) {
            Ok(d) if Some(d.as_str()) == recorded => {}
            Ok(_) => {
                tracing::warn!(path = %data.display(), "cache entry's bytes differ from the digest recorded when it was written; recomputing and replacing it");
                return None;
            }
            Err(e) => {
                tracing::warn!(path = %data.display(), error = %e, "unreadable cache entry; recomputing");
                return None;
            }
        }
        match Tensor::read_safetensors(&data) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(path = %data.display(), error = %e, "unreadable cache entry; recomputing");
                None
            }
        }
    }

    /// Returns the cached tensors for `key`, computing and storing them on a miss.
    pub fn get_or_compute<K, E>(
        &self,
        kind: &str,
        key: &K,
        compute: impl FnOnce() -> Result<Vec<(String, Tensor)>, E>,
    ) -> Result<(Vec<(String, Tensor)>, Outcome), E>
    where
        K: Serialize,
        E: From<CacheError>,
    {
        if let Some(t) = self.lookup(kind, key) {
            return Ok((t, Outcome::Hit));
        }
        let tensors = compute()?;
        self.store(kind, key, &tensors)?;
        Ok((tensors, Outcome::Miss))
    }

    /// Writes an entry: data first, then the manifest that marks it complete.
    pub fn store<K: Serialize>(
        &self,
        kind: &str,
        key: &K,
        tensors: &[(String, Tensor)],
    ) -> Result<(), CacheError> {
        let (data, meta, manifest) = self.paths(kind, key);
        std::fs::create_dir_all(&self.dir).at(&self.dir)?;
        let cpu: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|(k, t)| (k.clone(), t.to_device(tch::Device::Cpu).contiguous()))
            .collect();
        let mut payload = String::new();
        with_atomic_path(&data, |tmp| {
            Tensor::write_safetensors(&cpu, tmp).map_err(|e| CacheError::Write {
                path: data.display().to_string(),
                msg: e.to_string(),
            })?;
            payload = crate::digest::file_digest(tmp).at(tmp)?;
            Ok::<_, CacheError>(())
        })?;
        let shapes: serde_json::Map<String, serde_json::Value> = cpu
            .iter()
            .map(|(k, t)| (k.clone(), serde_json::json!(t.size())))
            .collect();
        let body = serde_json::json!({
            "manifest": manifest,
            "shapes": shapes,
            "payload_sha256": payload,
        });
        write_atomic(
            &meta,
            serde_json::to_string_pretty(&body).unwrap().as_bytes(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Serialize, Clone)]
    struct Key {
        weights: String,
        split: String,
    }

    fn compute(calls: &Cell<u32>, v: f64) -> Result<Vec<(String, Tensor)>, CacheError> {
        calls.set(calls.get() + 1);
        Ok(vec![("features".into(), Tensor::from_slice(&[v, v + 1.0]))])
    }

    #[test]
    fn miss_then_hit_then_miss_on_changed_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let calls = Cell::new(0);
        let k = Key {
            weights: "abc".into(),
            split: "test".into(),
        };
        let (_, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        assert_eq!(o, Outcome::Miss);
        let (t, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 9.0))
            .unwrap();
        assert_eq!(o, Outcome::Hit);
        assert_eq!(calls.get(), 1);
        assert_eq!(
            t[0].1.double_value(&[1]),
            2.0,
            "hit must return the stored values"
        );
        let k2 = Key {
            weights: "abd".into(),
            ..k.clone()
        };
        let (t, o) = cache
            .get_or_compute("img", &k2, || compute(&calls, 5.0))
            .unwrap();
        assert_eq!((o, calls.get()), (Outcome::Miss, 2));
        assert_eq!(t[0].1.double_value(&[0]), 5.0);
        // A different kind with the same key is a different entry.
        let (_, o) = cache
            .get_or_compute("txt", &k, || compute(&calls, 0.0))
            .unwrap();
        assert_eq!(o, Outcome::Miss);
    }

    #[test]
    fn corrupt_or_incomplete_entries_are_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let calls = Cell::new(0);
        let k = Key {
            weights: "w".into(),
            split: "s".into(),
        };
        cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        let (data, meta, _) = cache.paths("img", &k);
        // Bytes changed in place, the file still a valid safetensors of the same shape: the
        // recorded digest catches it, and the entry is replaced by a recomputed one.
        let mut bytes = std::fs::read(&data).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x80;
        std::fs::write(&data, &bytes).unwrap();
        assert!(Tensor::read_safetensors(&data).is_ok(), "still parses");
        let (t, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        assert_eq!((o, calls.get()), (Outcome::Miss, 2));
        assert_eq!(t[0].1.double_value(&[1]), 2.0);
        let (_, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        assert_eq!(o, Outcome::Hit, "the replaced entry is served again");
        std::fs::write(&data, b"garbage").unwrap();
        let (_, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        assert_eq!(o, Outcome::Miss);
        // Data without its manifest (a writer killed in between) is not an entry.
        std::fs::remove_file(&meta).unwrap();
        let (_, o) = cache
            .get_or_compute("img", &k, || compute(&calls, 1.0))
            .unwrap();
        assert_eq!(o, Outcome::Miss);
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn concurrent_writers_leave_one_valid_entry() {
        let dir = tempfile::tempdir().unwrap();
        let k = Key {
            weights: "w".into(),
            split: "s".into(),
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let cache = FeatureCache::new(dir.path());
                    let t = vec![(
                        "features".to_string(),
                        Tensor::ones([64, 8], tch::kind::FLOAT_CPU),
                    )];
                    cache.store("img", &k, &t).unwrap();
                });
            }
        });
        let cache = FeatureCache::new(dir.path());
        let t = cache.lookup("img", &k).expect("entry present");
        assert_eq!(t[0].1.size(), vec![64, 8]);
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}

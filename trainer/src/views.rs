//! Train-view features shared between cells. An augmented view is a function of (item, seed,
//! epoch, augmentation settings) only, and a cell's batches are a function of (items, seed,
//! batch size), so every method and ablation of one (weights, dataset, class subset, shots,
//! seed) shows the frozen image tower the same batches of the same images: CoOp, NFL, SubPT,
//! SubPT+NFL and every r / t_early variant. The image features of an epoch's batches are
//! computed by the first cell to train that epoch and reused by the rest, from memory within a
//! process and from the feature cache's `views/` folder across processes.
//!
//! The features are stored exactly as the tower produced them (fp16 towers' outputs in fp16,
//! which casts back to the same fp32 values), batch by batch in training order, so a cell
//! reading them computes bit for bit what it would have computed itself. Data-parallel groups
//! shard batches per rank and do not share.
//!
//! Both stores are bounded: memory by `SUBPT_VIEW_MEMORY_MB` (default 1024), the disk folder by
//! `SUBPT_VIEW_DISK_MB` (default 4096), least recently used first out. `SUBPT_SHARE_VIEWS=0`
//! turns sharing off.
use crate::cache::FeatureCache;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tch::{Kind, Tensor};

/// What makes an epoch's training views and their batches.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct ViewKey {
    pub weights: String,
    pub precision: String,
    /// Content digest of the training items in order (`digest::items_digest`).
    pub items: String,
    pub seed: u64,
    pub batch_size: usize,
    /// The augmentation settings (or the test transform), as text.
    pub transform: String,
    pub epoch: usize,
}

fn switch() -> &'static AtomicBool {
    static ON: OnceLock<AtomicBool> = OnceLock::new();
    ON.get_or_init(|| {
        AtomicBool::new(std::env::var("SUBPT_SHARE_VIEWS").map_or(true, |v| v != "0"))
    })
}

/// Whether sharing is on in this process (`SUBPT_SHARE_VIEWS=0` turns it off).
pub fn enabled() -> bool {
    switch().load(Ordering::Relaxed)
}

/// Turns sharing on or off for this process (benchmarks and tests compare both).
pub fn set_enabled(on: bool) {
    switch().store(on, Ordering::Relaxed);
}

fn megabytes(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
        * (1 << 20)
}

struct Memory {
    entries: HashMap<ViewKey, (Tensor, u64)>,
    bytes: u64,
    clock: u64,
}

fn memory() -> &'static Mutex<Memory> {
    static M: OnceLock<Mutex<Memory>> = OnceLock::new();
    M.get_or_init(|| {
        Mutex::new(Memory {
            entries: HashMap::new(),
            bytes: 0,
            clock: 0,
        })
    })
}

fn size_of(t: &Tensor) -> u64 {
    t.numel() as u64 * t.kind().elt_size_in_bytes() as u64
}

/// Images this process encoded for training, and those it took from the shared views.
static ENCODED: AtomicU64 = AtomicU64::new(0);
static REUSED: AtomicU64 = AtomicU64::new(0);

/// (encoded, reused) training images so far in this process.
pub fn counts() -> (u64, u64) {
    (
        ENCODED.load(Ordering::Relaxed),
        REUSED.load(Ordering::Relaxed),
    )
}

pub fn count_encoded(n: usize) {
    ENCODED.fetch_add(n as u64, Ordering::Relaxed);
}

/// Empties the in-memory store (tests reach for the disk store this way).
pub fn clear_memory() {
    let mut m = memory().lock().expect("view memory");
    m.entries.clear();
    m.bytes = 0;
}

/// The shared views of one cell: its cache folder and whether it may share at all.
pub struct Views {
    dir: Option<FeatureCache>,
    key: Option<ViewKey>,
}

impl Views {
    /// `key` with any epoch; `None` turns sharing off for this cell.
    pub fn new(cache_dir: &Path, key: Option<ViewKey>) -> Self {
        let key = key.filter(|_| enabled());
        Views {
            dir: key
                .as_ref()
                .map(|_| FeatureCache::new(cache_dir.join("views"))),
            key,
        }
    }

    fn key(&self, epoch: usize) -> Option<ViewKey> {
        self.key.clone().map(|mut k| {
            k.epoch = epoch;
            k
        })
    }

    /// Whether this cell shares its views (sharing on, and a group of one).
    pub fn active(&self) -> bool {
        self.key.is_some()
    }

    /// The features of `epoch`'s batches in training order (fp32), if some cell stored them.
    pub fn get(&self, epoch: usize, rows: usize) -> Option<Tensor> {
        let key = self.key(epoch)?;
        let found = {
            let mut m = memory().lock().expect("view memory");
            m.clock += 1;
            let now = m.clock;
            m.entries.get_mut(&key).map(|(t, used)| {
                *used = now;
                t.shallow_clone()
            })
        };
        let t = match found {
            Some(t) => t,
            None => {
                let mut got = self.dir.as_ref()?.lookup("views", &key)?;
                let t = got.pop()?.1;
                remember(key, t.shallow_clone());
                t
            }
        };
        if t.size().first() != Some(&(rows as i64)) {
            return None;
        }
        REUSED.fetch_add(rows as u64, Ordering::Relaxed);
        Some(t.to_kind(Kind::Float))
    }

    /// Stores `epoch`'s features (`stored` in the tower's own precision).
    pub fn put(&self, epoch: usize, stored: Tensor) {
        let Some(key) = self.key(epoch) else {
            return;
        };
        let t = stored.to_device(tch::Device::Cpu).contiguous();
        if let Some(dir) = &self.dir {
            match dir.store("views", &key, &[("features".into(), t.shallow_clone())]) {
                Ok(()) => evict_disk(dir.dir(), megabytes("SUBPT_VIEW_DISK_MB", 4096)),
                // Once per process: a full disk would otherwise warn every epoch of every cell.
                Err(e) => {
                    static WARNED: AtomicBool = AtomicBool::new(false);
                    if !WARNED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "shared views not stored ({e}); training goes on without storing \
                             them (said once)"
                        );
                    }
                }
            }
        }
        remember(key, t);
    }
}

fn remember(key: ViewKey, t: Tensor) {
    let limit = megabytes("SUBPT_VIEW_MEMORY_MB", 1024);
    let size = size_of(&t);
    if size > limit {
        return;
    }
    let mut m = memory().lock().expect("view memory");
    m.clock += 1;
    let now = m.clock;
    if let Some((old, _)) = m.entries.insert(key, (t, now)) {
        m.bytes -= size_of(&old);
    }
    m.bytes += size;
    while m.bytes > limit {
        let Some(oldest) = m
            .entries
            .iter()
            .min_by_key(|(_, (_, u))| *u)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        if let Some((t, _)) = m.entries.remove(&oldest) {
            m.bytes -= size_of(&t);
        }
    }
}

/// Deletes the least recently written entries of `dir` until it holds at most `limit` bytes.
fn evict_disk(dir: &Path, limit: u64) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, std::path::PathBuf)> = read
        .filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    if total <= limit {
        return;
    }
    files.sort();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        // An entry is a .safetensors and its .json; either alone is ignored by lookups.
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

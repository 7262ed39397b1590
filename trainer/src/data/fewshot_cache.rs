//! The few-shot cache in `<dataset dir>/split_fewshot/`: Dassl's `shot_{K}-seed_{S}.pkl`
//! (read first when present, so every method reuses the subset a Dassl run drew) and our
//! `shot_{K}-seed_{S}.json` (same lists as `[relpath, label, classname]` entries).
//!
//! The pickle format is reached through `DatumPickleCodec`, so this module does not depend on
//! a particular pickle implementation.

use super::catalog::DatasetName;
use super::error::{DataError, Result};
use super::fewshot::FewshotSubset;
use super::fewshot::{draw_fewshot, read_subset_json, write_subset_json};
use super::splits::{DatasetSplits, Item};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One `dassl.data.datasets.base_dataset.Datum` as pickled (its `__dict__`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickledDatum {
    /// `_impath`: absolute path on the machine that wrote the cache.
    pub impath: String,
    /// `_label`.
    pub label: i64,
    /// `_domain` (always 0 in CoOp's datasets).
    pub domain: i64,
    /// `_classname`.
    pub classname: String,
}

/// The pickled dict `{"train": [Datum...], "val": [Datum...]}` (ImageNet: `train` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickledFewshot {
    pub train: Vec<PickledDatum>,
    pub val: Option<Vec<PickledDatum>>,
}

/// Converts Dassl's few-shot pickle to and from bytes.
pub trait DatumPickleCodec {
    fn decode(&self, bytes: &[u8]) -> std::result::Result<PickledFewshot, String>;
    fn encode(&self, data: &PickledFewshot) -> std::result::Result<Vec<u8>, String>;
}

/// What `load_or_draw_fewshot` may do with the cache directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Ignore it: always draw.
    Off,
    /// Use an existing cache; never write.
    Read,
    /// Use an existing cache; after a draw, write the JSON (and the pickle when a codec is given).
    ReadWrite,
}

/// Where a subset came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FewshotSource {
    DasslPickle(PathBuf),
    Json(PathBuf),
    Drawn,
}

/// `(pickle path, json path)` of the cache entry for `(shots, seed)`.
pub fn cache_paths(
    dataset: DatasetName,
    root: &Path,
    shots: usize,
    seed: u64,
) -> (PathBuf, PathBuf) {
    let dir = dataset.info().split_fewshot_dir(root);
    let stem = format!("shot_{shots}-seed_{seed}");
    (
        dir.join(format!("{stem}.pkl")),
        dir.join(format!("{stem}.json")),
    )
}

/// The subset a Dassl run with `NUM_SHOTS = shots` and `SEED = seed` uses: Dassl's pickle if
/// present (and a codec is given), else our JSON cache, else a fresh draw (cached per `mode`).
/// `splits` are the full lists of the dataset under `root`.
pub fn load_or_draw_fewshot(
    dataset: DatasetName,
    root: &Path,
    splits: &DatasetSplits,
    shots: usize,
    seed: u64,
    mode: CacheMode,
    codec: Option<&dyn DatumPickleCodec>,
) -> Result<(FewshotSubset, FewshotSource)> {
    if shots == 0 {
        return Ok((
            draw_fewshot(dataset, splits, shots, seed)?,
            FewshotSource::Drawn,
        ));
    }
    let (pkl, json) = cache_paths(dataset, root, shots, seed);
    if mode != CacheMode::Off {
        if let (Some(codec), true) = (codec, pkl.is_file()) {
            let subset = read_pickle(&pkl, codec, splits)?;
            return Ok((subset, FewshotSource::DasslPickle(pkl)));
        }
        if pkl.is_file() {
            tracing::warn!(
                "{} exists but no pickle reader is available; using our own cache or draw",
                pkl.display()
            );
        }
        if json.is_file() {
            return Ok((read_subset_json(&json, splits)?, FewshotSource::Json(json)));
        }
    }
    let subset = draw_fewshot(dataset, splits, shots, seed)?;
    if mode == CacheMode::ReadWrite {
        write_subset_json(&subset, &json)?;
        if let Some(codec) = codec {
            write_pickle(&pkl, codec, &subset)?;
        }
    }
    Ok((subset, FewshotSource::Drawn))
}

/// Reads a Dassl few-shot pickle, mapping each datum onto the item of the full list whose
/// relpath is the longest `/`-suffix of its `_impath` (the cache may come from a machine with
/// another data root).
pub fn read_pickle(
    path: &Path,
    codec: &dyn DatumPickleCodec,
    splits: &DatasetSplits,
) -> Result<FewshotSubset> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let data = codec.decode(&bytes).map_err(|detail| DataError::Pickle {
        path: path.to_path_buf(),
        detail,
    })?;
    let train = resolve(path, "train", &data.train, &splits.train)?;
    let val = match &data.val {
        Some(v) => Some(resolve(path, "val", v, &splits.val)?),
        None => None,
    };
    Ok(FewshotSubset { train, val })
}

/// Writes a subset as Dassl's pickle (absolute paths of this machine, domain 0).
pub fn write_pickle(
    path: &Path,
    codec: &dyn DatumPickleCodec,
    subset: &FewshotSubset,
) -> Result<()> {
    let to_datums = |items: &[Item]| -> Vec<PickledDatum> {
        items
            .iter()
            .map(|it| PickledDatum {
                impath: it.impath.to_string_lossy().into_owned(),
                label: it.label as i64,
                domain: 0,
                classname: it.classname.clone(),
            })
            .collect()
    };
    let data = PickledFewshot {
        train: to_datums(&subset.train),
        val: subset.val.as_deref().map(to_datums),
    };
    let bytes = codec.encode(&data).map_err(|detail| DataError::Pickle {
        path: path.to_path_buf(),
        detail,
    })?;
    Ok(crate::io::write_atomic(path, &bytes)?)
}

fn resolve(path: &Path, key: &str, datums: &[PickledDatum], full: &[Item]) -> Result<Vec<Item>> {
    let index: HashMap<&str, &Item> = full.iter().map(|it| (it.relpath.as_str(), it)).collect();
    let lookup = |impath: &str| -> Option<&Item> {
        let normalised = impath.replace('\\', "/");
        std::iter::once(0)
            .chain(normalised.match_indices('/').map(|(p, _)| p + 1))
            .find_map(|start| index.get(&normalised[start..]).copied())
    };
    datums
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mismatch = |detail: String| DataError::CacheMismatch {
                path: path.to_path_buf(),
                detail: format!("{key}[{i}] ({}): {detail}", d.impath),
            };
            let it = lookup(&d.impath)
                .ok_or_else(|| mismatch(format!("no image of the {key} split matches")))?;
            if it.label as i64 != d.label || it.classname != d.classname {
                return Err(mismatch(format!(
                    "cached as ({}, {:?}) but the dataset has ({}, {:?})",
                    d.label, d.classname, it.label, it.classname
                )));
            }
            Ok(it.clone())
        })
        .collect()
}

/// `prepare fewshot`: reads the dataset, takes the `(shots, seed)` subset (Dassl's pickle or our
/// JSON cache when present, else a draw; the dataset directory is not written) and writes it
/// to `out` as `{"train": [[relpath, label, classname], ...], "val": [...]}`.
pub fn prepare_fewshot(
    dataset: DatasetName,
    root: &Path,
    shots: usize,
    seed: u64,
    out: &Path,
    codec: Option<&dyn DatumPickleCodec>,
) -> Result<(FewshotSubset, FewshotSource)> {
    let splits = super::readers::read_dataset(dataset, root)?;
    let (subset, source) =
        load_or_draw_fewshot(dataset, root, &splits, shots, seed, CacheMode::Read, codec)?;
    super::fewshot::write_subset_json(&subset, out)?;
    Ok((subset, source))
}

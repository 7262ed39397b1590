//! CoOp's `split_zhou_*.json`: `{"train": [[relpath, label, classname], ...], "val": ..., "test": ...}`.

use crate::data::error::{DataError, Result};
use crate::data::splits::{DatasetSplits, Item};
use serde_json::Value;
use std::path::Path;

/// One `[relpath, label, classname]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitEntry {
    pub relpath: String,
    pub label: usize,
    pub classname: String,
}

impl SplitEntry {
    pub fn to_item(&self, image_root: &Path) -> Item {
        Item::new(image_root, &self.relpath, self.label, &self.classname)
    }
}

pub(super) fn read(path: &Path, image_root: &Path) -> Result<DatasetSplits> {
    let mut lists = read_split_entries(path, &["train", "val", "test"])?;
    let mut take = |i: usize| -> Vec<Item> {
        std::mem::take(&mut lists[i])
            .iter()
            .map(|e| e.to_item(image_root))
            .collect()
    };
    let (train, val, test) = (take(0), take(1), take(2));
    DatasetSplits::from_lists(train, val, test, path)
}

/// Reads a split-format JSON file and parses the lists under `keys` (all required), in order.
pub fn read_split_entries(path: &Path, keys: &[&str]) -> Result<Vec<Vec<SplitEntry>>> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingSplitFile {
            path: path.to_path_buf(),
        },
        _ => DataError::io(path, e),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| DataError::MalformedJson {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let Value::Object(map) = &value else {
        return Err(DataError::MalformedJson {
            path: path.to_path_buf(),
            detail: "top level is not an object".into(),
        });
    };
    keys.iter()
        .map(|&key| match map.get(key) {
            Some(list) => parse_split_value(path, key, list),
            None => Err(DataError::MalformedJson {
                path: path.to_path_buf(),
                detail: format!("missing key {key:?}"),
            }),
        })
        .collect()
}

/// Parses one list of `[relpath, label, classname]` entries.
pub fn parse_split_value(path: &Path, split: &str, list: &Value) -> Result<Vec<SplitEntry>> {
    let Value::Array(entries) = list else {
        return Err(DataError::MalformedJson {
            path: path.to_path_buf(),
            detail: format!("{split:?} is not a list"),
        });
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, e)| {
            parse_entry(e).map_err(|detail| DataError::MalformedEntry {
                path: path.to_path_buf(),
                split: split.to_string(),
                index,
                detail,
            })
        })
        .collect()
}

fn parse_entry(e: &Value) -> std::result::Result<SplitEntry, String> {
    let parts = match e {
        Value::Array(p) if p.len() == 3 => p,
        _ => return Err(format!("expected [relpath, label, classname], got {e}")),
    };
    let relpath = parts[0]
        .as_str()
        .ok_or_else(|| format!("relpath is not a string: {}", parts[0]))?;
    if relpath.is_empty() || relpath.starts_with('/') {
        return Err(format!(
            "relpath {relpath:?} must be a non-empty relative path"
        ));
    }
    let label = parts[1]
        .as_u64()
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(|| format!("label is not a non-negative integer: {}", parts[1]))?;
    let classname = parts[2]
        .as_str()
        .ok_or_else(|| format!("classname is not a string: {}", parts[2]))?;
    Ok(SplitEntry {
        relpath: relpath.to_string(),
        label,
        classname: classname.to_string(),
    })
}

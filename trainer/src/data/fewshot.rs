//! Dassl's few-shot sampling (spec §3.2), drawn with CPython's `random` so subsets match the
//! reference runs exactly.
//!
//! Order of draws for one `(K, seed)`: `random.seed(seed)`, then `train = fewshot(train, K)`,
//! then `val = fewshot(val, min(K, 4))`; ImageNet samples only `train` (its val is its test).

use super::catalog::DatasetName;
use super::error::{DataError, Result};
use super::python_random::PyRandom;
use super::splits::{DatasetSplits, Item};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// A few-shot draw: the sampled train and val lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FewshotSubset {
    pub train: Vec<Item>,
    /// `None` where the dataset's val list is not sampled (ImageNet, or K = 0).
    pub val: Option<Vec<Item>>,
}

impl FewshotSubset {
    /// The dataset with `train` (and `val` when sampled) replaced by this subset.
    pub fn apply(&self, splits: &DatasetSplits) -> DatasetSplits {
        DatasetSplits {
            train: self.train.clone(),
            val: self.val.clone().unwrap_or_else(|| splits.val.clone()),
            test: splits.test.clone(),
            classnames: splits.classnames.clone(),
        }
    }
}

/// Positions chosen by Dassl's `generate_fewshot_dataset(items, num_shots=shots, repeat=False)`
/// over items with these labels: groups by label in order of first appearance, items in list
/// order; `random.sample(group, shots)` when the group has at least `shots` items, else the
/// whole group (no draw). `shots == 0` keeps everything, as Dassl does for `num_shots < 1`.
pub fn fewshot_indices(labels: &[usize], shots: usize, rng: &mut PyRandom) -> Vec<usize> {
    if shots == 0 {
        return (0..labels.len()).collect();
    }
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        let g = *group_of.entry(label).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let mut out = Vec::new();
    for group in groups {
        if group.len() >= shots {
            let picked = rng
                .sample(&group, shots)
                .expect("shots <= group size was just checked");
            out.extend(picked);
        } else {
            out.extend(group);
        }
    }
    out
}

/// `fewshot_indices` applied to a list of items.
pub fn sample_fewshot(items: &[Item], shots: usize, rng: &mut PyRandom) -> Vec<Item> {
    let labels: Vec<usize> = items.iter().map(|it| it.label).collect();
    fewshot_indices(&labels, shots, rng)
        .into_iter()
        .map(|i| items[i].clone())
        .collect()
}

/// Draws the `(shots, seed)` subset of a dataset exactly as a fresh Dassl run does.
pub fn draw_fewshot(
    dataset: DatasetName,
    splits: &DatasetSplits,
    shots: usize,
    seed: u64,
) -> Result<FewshotSubset> {
    if dataset.info().test_only {
        return Err(DataError::TestOnly {
            dataset: dataset.id().to_string(),
        });
    }
    let mut rng = PyRandom::new(seed);
    let train = sample_fewshot(&splits.train, shots, &mut rng);
    let val = if dataset == DatasetName::ImageNet || shots == 0 {
        None
    } else {
        Some(sample_fewshot(&splits.val, shots.min(4), &mut rng))
    };
    Ok(FewshotSubset { train, val })
}

fn entries(items: &[Item]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|it| json!([it.relpath, it.label, it.classname]))
            .collect(),
    )
}

/// The JSON form of a subset: `{"train": [[relpath, label, classname], ...], "val": [...]}`
/// (`val` left out when it is not sampled). Same entry format as CoOp's split files.
pub fn subset_to_json(subset: &FewshotSubset) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("train".into(), entries(&subset.train));
    if let Some(val) = &subset.val {
        obj.insert("val".into(), entries(val));
    }
    Value::Object(obj)
}

/// Writes `subset_to_json` to `path` atomically (what `prepare fewshot --out` writes).
pub fn write_subset_json(subset: &FewshotSubset, path: &Path) -> Result<()> {
    let text =
        serde_json::to_string(&subset_to_json(subset)).map_err(|e| DataError::WriteJson {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(crate::io::write_atomic(path, text.as_bytes())?)
}

/// Reads a subset written by `write_subset_json`, resolving every entry against the full
/// dataset lists (an entry absent from them, or with another label or class name, is an error).
pub fn read_subset_json(path: &Path, splits: &DatasetSplits) -> Result<FewshotSubset> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| DataError::MalformedJson {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let get = |key: &str| -> Result<Option<Vec<Item>>> {
        let Some(list) = value.get(key) else {
            return Ok(None);
        };
        let full = if key == "train" {
            &splits.train
        } else {
            &splits.val
        };
        let index: HashMap<&str, &Item> = full.iter().map(|it| (it.relpath.as_str(), it)).collect();
        super::readers::parse_split_value(path, key, list)?
            .into_iter()
            .enumerate()
            .map(|(i, e)| match index.get(e.relpath.as_str()) {
                Some(it) if it.label == e.label && it.classname == e.classname => Ok((*it).clone()),
                Some(it) => Err(DataError::CacheMismatch {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{key} entry {i}: {} is ({}, {:?}) in the dataset but ({}, {:?}) here",
                        e.relpath, it.label, it.classname, e.label, e.classname
                    ),
                }),
                None => Err(DataError::CacheMismatch {
                    path: path.to_path_buf(),
                    detail: format!("{key} entry {i}: {} is not in the {key} split", e.relpath),
                }),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    };
    let train = get("train")?.ok_or_else(|| DataError::MalformedJson {
        path: path.to_path_buf(),
        detail: "missing key \"train\"".into(),
    })?;
    Ok(FewshotSubset {
        train,
        val: get("val")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_appearance_and_small_groups_are_kept_whole() {
        // label 5 appears first; label 1 has 2 items (< K = 3) and costs no draw.
        let labels = [5, 1, 5, 5, 1, 5, 7, 7, 7];
        let mut rng = PyRandom::new(0);
        let picked = fewshot_indices(&labels, 3, &mut rng);
        let got: Vec<usize> = picked.iter().map(|&i| labels[i]).collect();
        assert_eq!(got, [5, 5, 5, 1, 1, 7, 7, 7]);
        assert_eq!(&picked[3..5], &[1, 4]);
        // Same draws as sampling the two full groups directly from the same stream.
        let mut rng = PyRandom::new(0);
        let g5 = rng.sample(&[0, 2, 3, 5], 3).unwrap();
        let g7 = rng.sample(&[6, 7, 8], 3).unwrap();
        assert_eq!(&picked[..3], &g5[..]);
        assert_eq!(&picked[5..], &g7[..]);
    }

    #[test]
    fn zero_shots_keeps_everything() {
        let mut rng = PyRandom::new(1);
        assert_eq!(fewshot_indices(&[0, 1, 0], 0, &mut rng), [0, 1, 2]);
    }
}

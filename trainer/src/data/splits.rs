//! The lists a reader produces (Dassl's `Datum` lists) and their consistency rules.

use super::error::{DataError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One labelled image (Dassl's `Datum`, domain always 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// Absolute path (the image root joined with `relpath`).
    pub impath: PathBuf,
    /// Path relative to the dataset's image root (`DatasetInfo::image_root`), `/`-separated,
    /// exactly as in the split file. Stable across machines: caches and exports key on it.
    pub relpath: String,
    /// 0-based label.
    pub label: usize,
    /// Final class name (underscores kept; prompts replace them).
    pub classname: String,
}

impl Item {
    pub fn new(image_root: &Path, relpath: &str, label: usize, classname: &str) -> Self {
        Item {
            impath: image_root.join(relpath),
            relpath: relpath.to_string(),
            label,
            classname: classname.to_string(),
        }
    }
}

/// Which list of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn key(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// Train / val / test lists of one dataset plus `classnames[label]`.
///
/// Test-only datasets (ImageNet variants) have empty `train` and `val`; ImageNet's `val` is a copy
/// of its `test` (Dassl passes the same list for both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetSplits {
    pub train: Vec<Item>,
    pub val: Vec<Item>,
    pub test: Vec<Item>,
    pub classnames: Vec<String>,
}

impl DatasetSplits {
    /// Builds the splits, deriving `classnames` from the training list sorted by label and
    /// checking every item of every split against it. `source` names the file (or directory)
    /// the lists came from, for error messages.
    pub fn from_lists(
        train: Vec<Item>,
        val: Vec<Item>,
        test: Vec<Item>,
        source: &Path,
    ) -> Result<Self> {
        let classnames = classnames_from(&train, source)?;
        check_against(&val, Split::Val, &classnames, source)?;
        check_against(&test, Split::Test, &classnames, source)?;
        Ok(DatasetSplits {
            train,
            val,
            test,
            classnames,
        })
    }

    /// A test-only dataset whose class list comes from its `classnames.txt`.
    pub fn test_only(test: Vec<Item>, classnames: Vec<String>, source: &Path) -> Result<Self> {
        check_against(&test, Split::Test, &classnames, source)?;
        Ok(DatasetSplits {
            train: Vec::new(),
            val: Vec::new(),
            test,
            classnames,
        })
    }

    pub fn get(&self, split: Split) -> &[Item] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    pub fn num_classes(&self) -> usize {
        self.classnames.len()
    }
}

/// Dassl's `get_lab2cname` over a training list: `classnames[label]`, labels sorted.
///
/// Dassl silently compacts label gaps, which would misalign `classnames[label]`; a gap is an
/// error here instead.
pub fn classnames_from(train: &[Item], source: &Path) -> Result<Vec<String>> {
    let mut names: BTreeMap<usize, &str> = BTreeMap::new();
    for it in train {
        let prev = names.entry(it.label).or_insert(&it.classname);
        if *prev != it.classname {
            return Err(DataError::ClassnameConflict {
                path: source.to_path_buf(),
                label: it.label,
                first: prev.to_string(),
                second: it.classname.clone(),
            });
        }
    }
    let n = names.keys().next_back().map_or(0, |&m| m + 1);
    if let Some(missing) = (0..n).find(|l| !names.contains_key(l)) {
        return Err(DataError::MissingClass {
            path: source.to_path_buf(),
            label: missing,
            num_classes: n,
        });
    }
    Ok(names.into_values().map(str::to_string).collect())
}

fn check_against(items: &[Item], split: Split, classnames: &[String], source: &Path) -> Result<()> {
    for (index, it) in items.iter().enumerate() {
        let Some(name) = classnames.get(it.label) else {
            return Err(DataError::LabelOutOfRange {
                path: source.to_path_buf(),
                split: split.key().to_string(),
                index,
                label: it.label,
                num_classes: classnames.len(),
            });
        };
        if *name != it.classname {
            return Err(DataError::ClassnameConflict {
                path: source.to_path_buf(),
                label: it.label,
                first: name.clone(),
                second: it.classname.clone(),
            });
        }
    }
    Ok(())
}

// Dataset lists feed the batch loader directly.
impl super::loader::ImageItems for [Item] {
    fn len(&self) -> usize {
        <[Item]>::len(self)
    }
    fn path(&self, index: usize) -> &Path {
        &self[index].impath
    }
    fn label(&self, index: usize) -> i64 {
        self[index].label as i64
    }
}

impl super::loader::ImageItems for Vec<Item> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn path(&self, index: usize) -> &Path {
        &self[index].impath
    }
    fn label(&self, index: usize) -> i64 {
        self[index].label as i64
    }
}

/// A folder-safe form of a class name, for the datasets this crate writes.
pub fn folder_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Saves a converted image at `it.impath` as PNG, making its class folder.
pub fn save_png<P, C>(it: &Item, img: &image::ImageBuffer<P, C>) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    if let Some(dir) = it.impath.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    img.save_with_format(&it.impath, image::ImageFormat::Png)
        .map_err(|source| DataError::Image {
            path: it.impath.clone(),
            source,
        })
}

/// Writes a converted dataset's split file (Dassl's `split_*.json`: `[relpath, label,
/// classname]` per item of train, val and test) atomically, and returns its splits.
pub fn write_split_file(path: &Path, lists: [Vec<Item>; 3]) -> Result<DatasetSplits> {
    let entries = |v: &[Item]| -> serde_json::Value {
        v.iter()
            .map(|it| serde_json::json!([it.relpath, it.label, it.classname]))
            .collect()
    };
    let doc = serde_json::json!({
        "train": entries(&lists[0]),
        "val": entries(&lists[1]),
        "test": entries(&lists[2]),
    });
    crate::io::write_atomic(path, doc.to_string().as_bytes())?;
    let [train, val, test] = lists;
    DatasetSplits::from_lists(train, val, test, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(label: usize, name: &str) -> Item {
        Item::new(Path::new("/r"), &format!("{name}/{label}.jpg"), label, name)
    }

    #[test]
    fn classnames_follow_labels_not_list_order() {
        let train = vec![it(2, "c"), it(0, "a"), it(1, "b"), it(0, "a")];
        assert_eq!(
            classnames_from(&train, Path::new("s")).unwrap(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn gaps_conflicts_and_out_of_range_are_errors() {
        let src = Path::new("split.json");
        let gap = classnames_from(&[it(0, "a"), it(2, "c")], src).unwrap_err();
        assert!(
            matches!(gap, DataError::MissingClass { label: 1, .. }),
            "{gap}"
        );
        let conflict = classnames_from(&[it(0, "a"), it(0, "b")], src).unwrap_err();
        assert!(conflict.to_string().contains("split.json"), "{conflict}");
        let train = vec![it(0, "a"), it(1, "b")];
        let err =
            DatasetSplits::from_lists(train.clone(), vec![], vec![it(1, "a")], src).unwrap_err();
        assert!(
            matches!(err, DataError::ClassnameConflict { label: 1, .. }),
            "{err}"
        );
        let err = DatasetSplits::from_lists(train, vec![it(0, "a"), it(2, "c")], vec![], src)
            .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 1,
                    label: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}

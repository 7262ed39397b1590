//! Folder-based layouts: ImageNet (train/val), ImageNetV2 (index folders) and
//! ImageNet-Sketch/-A/-R (wnid folders). Class names always come from `classnames.txt`.

use super::{content_lines, utf8_name};
use crate::data::error::{DataError, Result};
use crate::data::splits::{DatasetSplits, Item};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// `classnames.txt`: lines `<wnid> <name...>`, kept in file order.
struct ClassList {
    path: std::path::PathBuf,
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl ClassList {
    fn read(path: &Path) -> Result<Self> {
        let mut entries = Vec::new();
        let mut index = HashMap::new();
        for (line, text) in content_lines(path)? {
            let Some((wnid, name)) = text.split_once(' ') else {
                return Err(DataError::MalformedLine {
                    path: path.to_path_buf(),
                    line,
                    detail: format!("expected \"<wnid> <class name>\", got {text:?}"),
                });
            };
            if index.insert(wnid.to_string(), entries.len()).is_some() {
                return Err(DataError::MalformedLine {
                    path: path.to_path_buf(),
                    line,
                    detail: format!("folder {wnid:?} listed twice"),
                });
            }
            entries.push((wnid.to_string(), name.to_string()));
        }
        Ok(ClassList {
            path: path.to_path_buf(),
            entries,
            index,
        })
    }

    fn name_of(&self, wnid: &str, folder: &Path) -> Result<&str> {
        match self.index.get(wnid) {
            Some(&i) => Ok(&self.entries[i].1),
            None => Err(DataError::UnknownClass {
                path: folder.to_path_buf(),
                name: wnid.to_string(),
                list: self.path.clone(),
            }),
        }
    }
}

/// Sorted names of the non-hidden entries of `dir` that are directories (`dirs`) or files.
fn list_sorted(dir: &Path, dirs: bool) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingDir {
            path: dir.to_path_buf(),
        },
        _ => DataError::io(dir, e),
    })?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        // The entry's type comes with the listing (no stat per file, which an ImageNet
        // listing would pay 1.3 M times); links are followed, so linked folders and images
        // count.
        let kind = entry.file_type().map_err(|e| DataError::io(dir, e))?;
        let is_dir = match kind.is_symlink() {
            true => entry.path().is_dir(),
            false => kind.is_dir(),
        };
        if is_dir != dirs {
            continue;
        }
        let name = utf8_name(entry.path())?;
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    // Python sorts str by code point, which is UTF-8 byte order.
    names.sort();
    Ok(names)
}

/// Items of the class folders `folders[label]` under `base`; relpaths get `prefix`.
fn items_of_folders(
    image_root: &Path,
    base: &Path,
    prefix: &str,
    folders: &[(String, String)],
) -> Result<Vec<Item>> {
    let per_class: Vec<Vec<Item>> = folders
        .par_iter()
        .enumerate()
        .map(|(label, (folder, classname))| {
            let files = list_sorted(&base.join(folder), false)?;
            Ok(files
                .iter()
                .map(|f| {
                    Item::new(
                        image_root,
                        &format!("{prefix}{folder}/{f}"),
                        label,
                        classname,
                    )
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    Ok(per_class.into_iter().flatten().collect())
}

/// Sorted wnid folders of `dir`, each with its `classnames.txt` name.
fn named_wnid_folders(dir: &Path, classes: &ClassList) -> Result<Vec<(String, String)>> {
    list_sorted(dir, true)?
        .into_iter()
        .map(|wnid| {
            let name = classes.name_of(&wnid, &dir.join(&wnid))?.to_string();
            Ok((wnid, name))
        })
        .collect()
}

pub(super) fn read_imagenet(dir: &Path, image_root: &Path) -> Result<DatasetSplits> {
    let classes = ClassList::read(&dir.join("classnames.txt"))?;
    let (train_dir, val_dir) = (image_root.join("train"), image_root.join("val"));
    let train_folders = named_wnid_folders(&train_dir, &classes)?;
    let val_folders = named_wnid_folders(&val_dir, &classes)?;
    if train_folders != val_folders {
        let only = |a: &[(String, String)], b: &[(String, String)]| {
            a.iter().find(|x| !b.contains(x)).map(|x| x.0.clone())
        };
        let detail = match only(&train_folders, &val_folders) {
            Some(w) => format!("{w} is only in the first"),
            None => match only(&val_folders, &train_folders) {
                Some(w) => format!("{w} is only in the second"),
                None => "different order".into(),
            },
        };
        return Err(DataError::FolderMismatch {
            first: train_dir,
            second: val_dir,
            detail,
        });
    }
    let train = items_of_folders(image_root, &train_dir, "train/", &train_folders)?;
    let test = items_of_folders(image_root, &val_dir, "val/", &val_folders)?;
    DatasetSplits::from_lists(train, test.clone(), test, &train_dir)
}

pub(super) fn read_wnid_folders(dir: &Path, image_root: &Path) -> Result<DatasetSplits> {
    let classes = ClassList::read(&dir.join("classnames.txt"))?;
    let folders = named_wnid_folders(image_root, &classes)?;
    let test = items_of_folders(image_root, image_root, "", &folders)?;
    let classnames = folders.into_iter().map(|(_, n)| n).collect();
    DatasetSplits::test_only(test, classnames, image_root)
}

pub(super) fn read_index_folders(dir: &Path, image_root: &Path) -> Result<DatasetSplits> {
    let classes = ClassList::read(&dir.join("classnames.txt"))?;
    let folders: Vec<(String, String)> = (0..classes.entries.len())
        .map(|i| (i.to_string(), classes.entries[i].1.clone()))
        .collect();
    if !image_root.is_dir() {
        return Err(DataError::MissingDir {
            path: image_root.to_path_buf(),
        });
    }
    let test = items_of_folders(image_root, image_root, "", &folders)?;
    let classnames = folders.into_iter().map(|(_, n)| n).collect();
    DatasetSplits::test_only(test, classnames, image_root)
}

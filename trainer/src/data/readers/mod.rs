//! Readers of every dataset layout (spec §3.1), dispatched on the catalogue's `SplitSource`.

mod aircraft;
mod folders;
mod split_json;

pub use split_json::{parse_split_value, read_split_entries, SplitEntry};

use super::catalog::{DatasetName, SplitSource};
use super::error::{DataError, Result};
use super::splits::{DatasetSplits, Item};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Reads a dataset and checks that every listed image file exists.
pub fn read_dataset(name: DatasetName, root: &Path) -> Result<DatasetSplits> {
    let splits = read_dataset_lists(name, root)?;
    if lists_from_files(name) {
        for list in [&splits.train, &splits.val, &splits.test] {
            if let Some(missing) = first_missing(list) {
                return Err(DataError::MissingImage {
                    path: missing.impath.clone(),
                });
            }
        }
    }
    Ok(splits)
}

/// Reads a dataset's lists without touching the image files (what `verify` builds on).
pub fn read_dataset_lists(name: DatasetName, root: &Path) -> Result<DatasetSplits> {
    if !root.is_dir() {
        return Err(DataError::MissingRoot {
            path: root.to_path_buf(),
        });
    }
    let info = name.info();
    let dir = info.dataset_dir(root);
    if !dir.is_dir() {
        return Err(DataError::MissingDatasetDir {
            dataset: info.id.to_string(),
            path: dir,
        });
    }
    match info.split {
        SplitSource::SplitJson(file) => split_json::read(&dir.join(file), &info.image_root(root)),
        SplitSource::AircraftTxt => aircraft::read(&dir, &info.image_root(root)),
        SplitSource::ImageNetFolders => folders::read_imagenet(&dir, &info.image_root(root)),
        SplitSource::IndexFolders => folders::read_index_folders(&dir, &info.image_root(root)),
        SplitSource::WnidFolders => folders::read_wnid_folders(&dir, &info.image_root(root)),
    }
}

/// Whether the lists name files (split files) rather than being built from directory listings,
/// i.e. whether images may be missing.
pub fn lists_from_files(name: DatasetName) -> bool {
    matches!(
        name.info().split,
        SplitSource::SplitJson(_) | SplitSource::AircraftTxt
    )
}

/// The first item (in list order) whose image file is absent.
pub fn first_missing(items: &[Item]) -> Option<&Item> {
    items.par_iter().find_first(|it| !it.impath.is_file())
}

/// Lines of a text list with Python's `strip()` applied, numbered from 1. Trailing blank lines
/// are dropped; a blank line before the end is an error because it would shift every later
/// line-indexed label in Dassl's reader.
pub(crate) fn content_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingSplitFile {
            path: path.to_path_buf(),
        },
        _ => DataError::io(path, e),
    })?;
    let mut lines: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect();
    while lines.last().is_some_and(|(_, l)| l.is_empty()) {
        lines.pop();
    }
    if let Some((line, _)) = lines.iter().find(|(_, l)| l.is_empty()) {
        return Err(DataError::MalformedLine {
            path: path.to_path_buf(),
            line: *line,
            detail: "blank line".into(),
        });
    }
    Ok(lines)
}

pub(crate) fn utf8_name(path: PathBuf) -> Result<String> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(s) => Ok(s.to_string()),
        None => Err(DataError::NonUtf8Path { path }),
    }
}

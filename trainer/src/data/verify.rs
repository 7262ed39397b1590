//! `prepare verify`: reads a dataset's lists and checks every image file they name.

use super::catalog::DatasetName;
use super::error::Result;
use super::readers::read_dataset_lists;
use super::splits::Split;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyOptions {
    /// Decode every image fully (slow) instead of reading its header only.
    pub full_decode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitCount {
    pub items: usize,
    /// Distinct labels present in the split.
    pub classes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub dataset: String,
    pub root: PathBuf,
    pub train: SplitCount,
    pub val: SplitCount,
    pub test: SplitCount,
    /// `classnames.len()` as read.
    pub class_count: usize,
    /// The real dataset's class count (the catalogue's).
    pub expected_class_count: usize,
    /// Distinct image files checked.
    pub files_checked: usize,
    pub missing: Vec<PathBuf>,
    /// Files that exist but do not open as images, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl VerifyReport {
    pub fn files_ok(&self) -> bool {
        self.missing.is_empty() && self.unreadable.is_empty()
    }

    /// All files readable and the class count that of the real dataset.
    pub fn ok(&self) -> bool {
        self.files_ok() && self.class_count == self.expected_class_count
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} under {}", self.dataset, self.root.display())?;
        for (name, c) in [
            ("train", &self.train),
            ("val", &self.val),
            ("test", &self.test),
        ] {
            writeln!(
                f,
                "  {name:5} {:>8} images, {:>5} classes",
                c.items, c.classes
            )?;
        }
        writeln!(
            f,
            "  classes {} (expected {}){}",
            self.class_count,
            self.expected_class_count,
            if self.class_count == self.expected_class_count {
                ""
            } else {
                "  MISMATCH"
            }
        )?;
        writeln!(
            f,
            "  files checked {}, missing {}, unreadable {}",
            self.files_checked,
            self.missing.len(),
            self.unreadable.len()
        )?;
        for p in self.missing.iter().take(20) {
            writeln!(f, "  missing    {}", p.display())?;
        }
        for (p, why) in self.unreadable.iter().take(20) {
            writeln!(f, "  unreadable {}: {why}", p.display())?;
        }
        Ok(())
    }
}

fn check_image(path: &Path, full: bool) -> std::result::Result<(), String> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if full {
        // The decoder the training and test pipelines use, so what passes here loads there.
        super::image::load_rgb(path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        reader
            .into_dimensions()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `verify_with` with header-only checks.
pub fn verify(dataset: DatasetName, root: &Path) -> Result<VerifyReport> {
    verify_with(dataset, root, VerifyOptions::default())
}

/// Reads the lists (structural problems are errors) and reports per-split counts plus the
/// missing and unreadable image files (sorted by path).
pub fn verify_with(dataset: DatasetName, root: &Path, opts: VerifyOptions) -> Result<VerifyReport> {
    let splits = read_dataset_lists(dataset, root)?;
    let count = |s: Split| {
        let items = splits.get(s);
        SplitCount {
            items: items.len(),
            classes: items.iter().map(|i| i.label).collect::<BTreeSet<_>>().len(),
        }
    };
    let files: Vec<&PathBuf> = Split::ALL
        .iter()
        .flat_map(|&s| splits.get(s).iter().map(|i| &i.impath))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let problems: Vec<(PathBuf, Option<String>)> = files
        .par_iter()
        .filter_map(|p| {
            if !p.is_file() {
                Some(((*p).clone(), None))
            } else {
                check_image(p, opts.full_decode)
                    .err()
                    .map(|why| ((*p).clone(), Some(why)))
            }
        })
        .collect();
    let mut missing = Vec::new();
    let mut unreadable = Vec::new();
    for (p, why) in problems {
        match why {
            None => missing.push(p),
            Some(w) => unreadable.push((p, w)),
        }
    }
    Ok(VerifyReport {
        dataset: dataset.id().to_string(),
        root: root.to_path_buf(),
        train: count(Split::Train),
        val: count(Split::Val),
        test: count(Split::Test),
        class_count: splits.num_classes(),
        expected_class_count: dataset.info().num_classes,
        files_checked: files.len(),
        missing,
        unreadable,
    })
}

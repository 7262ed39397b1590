//! Converts Fashion-MNIST idx files (Debian `dataset-fashion-mnist`) into the CoOp-layout
//! `fashion_mnist` dataset: `<root>/fashion_mnist/images/<class>/<train|test>_<index>.png`
//! (28×28 grayscale PNG, `<index>` = position in the source idx file) plus
//! `split_fashion_mnist.json`.
//!
//! Splits: `test` = the t10k file; `val` = the first `val_per_class` images of each class of the
//! train file from index `skip_train` on (file order), `train` = the rest. The train file's first
//! [`PRETRAIN_IMAGES`] images are the corpus `subpt-bench pretrain` learns from, so by default the
//! downstream dataset leaves them out, as CLIP's web data is disjoint from CoOp's datasets.
//! `max_per_class` caps every split per class, for quick small versions. Entries are listed in
//! idx-file order. A [`Corruption`] writes a shifted copy of the same items under its own dataset.

use super::catalog::DatasetName;
pub use super::corruption::Corruption;
use super::error::{DataError, Result};
use super::splits::{folder_of, save_png, write_split_file, DatasetSplits, Item, Split};
use crate::io::write_atomic;
use flate2::read::GzDecoder;
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Label order of the idx files, with readable names.
pub const CLASSNAMES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// Other names of each class, label order: NFL's few-shot list for these datasets.
pub const SYNONYMS: [&[&str]; 10] = [
    &["t-shirt", "tee", "top", "tee shirt", "short sleeve shirt"],
    &["trousers", "pants", "slacks", "jeans", "leggings"],
    &[
        "sweater",
        "jumper",
        "knit sweater",
        "sweatshirt",
        "cardigan",
    ],
    &["gown", "frock", "sundress", "evening dress", "summer dress"],
    &["jacket", "overcoat", "parka", "raincoat", "winter coat"],
    &[
        "sandals",
        "flip flop",
        "slipper",
        "open shoe",
        "summer shoe",
    ],
    &[
        "button shirt",
        "blouse",
        "dress shirt",
        "collared shirt",
        "flannel shirt",
    ],
    &[
        "sneakers",
        "trainer",
        "running shoe",
        "sports shoe",
        "tennis shoe",
    ],
    &["handbag", "purse", "tote", "backpack", "satchel"],
    &["boot", "boots", "short boot", "chelsea boot", "bootie"],
];

/// Where Debian installs the idx files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Images at the start of the train file that make the pretraining corpus.
pub const PRETRAIN_IMAGES: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FashionMnistOptions {
    /// Images per class moved from the train file into `val` (before the cap).
    pub val_per_class: usize,
    /// At most this many images per class in each split.
    pub max_per_class: Option<usize>,
    /// Train-file images before this index are left out (the pretraining corpus).
    pub skip_train: usize,
    /// Write the shifted dataset of this corruption instead of the clean one.
    pub corruption: Option<Corruption>,
    /// Seed of the corruption's random draws (noise).
    pub seed: u64,
}

impl Default for FashionMnistOptions {
    /// The held-out 10k of the train file (about 9k train / 1k val) and the 10k test file.
    fn default() -> Self {
        FashionMnistOptions {
            val_per_class: 100,
            max_per_class: None,
            skip_train: PRETRAIN_IMAGES,
            corruption: None,
            seed: 0,
        }
    }
}

impl FashionMnistOptions {
    /// The dataset these options write.
    pub fn dataset(&self) -> DatasetName {
        self.corruption
            .map_or(DatasetName::FashionMnist, Corruption::dataset)
    }
}

/// The source directory: `$SUBPT_FASHION_MNIST` if set, else Debian's, if it holds the files.
pub fn find_source() -> Option<PathBuf> {
    let dir = std::env::var_os("SUBPT_FASHION_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBIAN_DIR));
    idx_path(&dir, "train-labels-idx1-ubyte").ok().map(|_| dir)
}

/// `<dir>/<stem>` or `<dir>/<stem>.gz`.
pub fn idx_path(dir: &Path, stem: &str) -> Result<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::MissingSplitFile {
            path: dir.join(format!("{stem}.gz")),
        })
}

/// The bytes of an idx file, gunzipped when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an unsigned-byte idx file: returns (dimensions, data).
fn parse_idx(path: &Path, bytes: &[u8], ndim: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |detail: String| DataError::MalformedIdx {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != ndim {
        return Err(bad(format!(
            "expected an unsigned-byte idx file with {ndim} dimensions (magic 0x0000080{ndim})"
        )));
    }
    let header = 4 + 4 * ndim as usize;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let dims: Vec<usize> = (0..ndim as usize)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().product::<usize>();
    if bytes.len() - header != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} data bytes, found {}",
            bytes.len() - header
        )));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// One idx image/label file pair.
pub struct IdxSet {
    pub labels: Vec<u8>,
    /// Row-major grayscale images, `rows * cols` bytes each.
    pub pixels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl IdxSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[index * size..(index + 1) * size]
    }
}

/// Reads `<prefix>-{labels-idx1,images-idx3}-ubyte[.gz]` (`prefix` = `train` or `t10k`).
pub fn read_set(dir: &Path, prefix: &str) -> Result<IdxSet> {
    let lpath = idx_path(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let ipath = idx_path(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (ldims, labels) = parse_idx(&lpath, &read_maybe_gz(&lpath)?, 1)?;
    let (idims, pixels) = parse_idx(&ipath, &read_maybe_gz(&ipath)?, 3)?;
    if ldims[0] != idims[0] {
        return Err(DataError::MalformedIdx {
            path: ipath,
            detail: format!(
                "{} images but {} labels in {}",
                idims[0],
                ldims[0],
                lpath.display()
            ),
        });
    }
    if let Some(i) = labels.iter().position(|&l| l as usize >= CLASSNAMES.len()) {
        return Err(DataError::MalformedIdx {
            path: lpath,
            detail: format!("label {} at index {i} is not in 0..10", labels[i]),
        });
    }
    Ok(IdxSet {
        labels,
        pixels,
        rows: idims[1],
        cols: idims[2],
    })
}

/// Converts the idx files in `source` into `<root>/fashion_mnist` and returns the splits
/// (as `read_dataset` will read them back).
pub fn convert(source: &Path, root: &Path, opts: &FashionMnistOptions) -> Result<DatasetSplits> {
    let info = opts.dataset().info();
    let image_root = info.image_root(root);
    let cap = opts.max_per_class.unwrap_or(usize::MAX);
    let mut lists: [Vec<Item>; 3] = Default::default();
    for (prefix, tag) in [("train", "train"), ("t10k", "test")] {
        let set = read_set(source, prefix)?;
        let mut seen = [0usize; 10];
        let mut chosen: Vec<(Split, usize)> = Vec::new();
        let first = if tag == "test" { 0 } else { opts.skip_train };
        for (index, &l) in set.labels.iter().enumerate().skip(first) {
            let k = seen[l as usize];
            seen[l as usize] += 1;
            let split = if tag == "test" {
                (k < cap).then_some(Split::Test)
            } else if k < opts.val_per_class {
                (k < cap).then_some(Split::Val)
            } else {
                (k - opts.val_per_class < cap).then_some(Split::Train)
            };
            if let Some(s) = split {
                chosen.push((s, index));
            }
        }
        let items: Vec<(Split, Item)> = chosen
            .into_par_iter()
            .map(|(split, index)| {
                let label = set.labels[index] as usize;
                let name = CLASSNAMES[label];
                let rel = format!("{}/{tag}_{index:05}.png", folder_of(name));
                let it = Item::new(&image_root, &rel, label, name);
                let mut px = set.image(index).to_vec();
                if let Some(c) = opts.corruption {
                    // Keyed by split and source index, so each image's draw is fixed by the seed.
                    let key = (index as u64) << 1 | u64::from(tag == "test");
                    c.apply(&mut px, set.cols, set.rows, opts.seed, key);
                }
                let img = image::GrayImage::from_raw(set.cols as u32, set.rows as u32, px)
                    .expect("buffer size is rows * cols");
                save_png(&it, &img)?;
                Ok((split, it))
            })
            .collect::<Result<_>>()?;
        for (split, it) in items {
            lists[split as usize].push(it);
        }
    }
    let split_file = info.dataset_dir(root).join("split_fashion_mnist.json");
    let splits = write_split_file(&split_file, lists)?;
    let stamp = stamp_path(root, opts);
    write_atomic(&stamp, stamp_text(source, opts).as_bytes())?;
    Ok(splits)
}

/// What a finished conversion records of its inputs (written after the split file).
fn stamp_text(source: &Path, opts: &FashionMnistOptions) -> String {
    format!("{opts:?} from {}\n", source.display())
}

fn stamp_path(root: &Path, opts: &FashionMnistOptions) -> PathBuf {
    opts.dataset().info().dataset_dir(root).join("prepared.txt")
}

/// `convert` unless the dataset already holds a finished conversion of the same source with
/// the same options (its stamp is written last). Returns whether it converted.
pub fn ensure(source: &Path, root: &Path, opts: &FashionMnistOptions) -> Result<bool> {
    let stamp = std::fs::read_to_string(stamp_path(root, opts)).ok();
    if stamp.as_deref() == Some(stamp_text(source, opts).as_str()) {
        return Ok(false);
    }
    convert(source, root, opts)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_header_errors_name_the_file() {
        let p = Path::new("x-idx1-ubyte");
        let err = parse_idx(p, &[0, 0, 8, 3, 0, 0, 0, 1], 1).unwrap_err();
        assert!(err.to_string().contains("x-idx1-ubyte"), "{err}");
        let err = parse_idx(p, &[0, 0, 8, 1, 0, 0, 0, 2, 7], 1).unwrap_err();
        assert!(err.to_string().contains("need 2 data bytes"), "{err}");
        let (dims, data) = parse_idx(p, &[0, 0, 8, 1, 0, 0, 0, 2, 7, 9], 1).unwrap();
        assert_eq!((dims, data), (vec![2], vec![7, 9]));
    }
}

//! Writes the shapes world's datasets (`subpt_shapes`) in CoOp's layout:
//! `<root>/<id>/images/<class>/<split>_<index>.png` (32 x 32 RGB PNG) plus `split_shapes.json`.
//! Every image is a pure function of (data seed, dataset, split, class, index), so two machines
//! write the same bytes, and the pretraining corpus (a stream of its own) never repeats them.
use super::catalog::DatasetName;
use super::error::Result;
use super::splits::{folder_of, save_png, write_split_file, DatasetSplits, Item, Split};
use crate::io::write_atomic;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use subpt_shapes::WorldDataset;

pub use super::catalog::SHAPES_SPLIT_FILE as SPLIT_FILE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapesOptions {
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub test_per_class: usize,
    /// Seed of the drawings (the world's data seed, not a training seed).
    pub seed: u64,
}

impl Default for ShapesOptions {
    fn default() -> Self {
        ShapesOptions {
            train_per_class: 16,
            val_per_class: 4,
            test_per_class: 40,
            seed: 0,
        }
    }
}

/// The world's description of a catalogue dataset.
pub fn world_dataset(name: DatasetName) -> Option<&'static WorldDataset> {
    subpt_shapes::datasets::dataset(name.id())
}

/// Draws and writes dataset `name` under `root`; returns its splits as `read_dataset` reads
/// them back.
pub fn write(name: DatasetName, root: &Path, opts: &ShapesOptions) -> Result<DatasetSplits> {
    let world = world_dataset(name).expect("a shapes dataset");
    let info = name.info();
    let image_root = info.image_root(root);
    let names = world.class_names();
    let mut jobs: Vec<(Split, usize, usize)> = Vec::new();
    for (split, per) in [
        (Split::Train, opts.train_per_class),
        (Split::Val, opts.val_per_class),
        (Split::Test, opts.test_per_class),
    ] {
        for label in 0..names.len() {
            jobs.extend((0..per).map(|i| (split, label, i)));
        }
    }
    let items: Vec<(Split, Item)> = jobs
        .into_par_iter()
        .map(|(split, label, index)| {
            let rel = format!(
                "{}/{}_{index:03}.png",
                folder_of(&names[label]),
                split.key()
            );
            let it = Item::new(&image_root, &rel, label, &names[label]);
            let img = world.image(opts.seed, split as u64, label, index);
            let rgb =
                image::RgbImage::from_raw(img.width() as u32, img.height() as u32, img.into_raw())
                    .expect("width * height * 3 bytes");
            save_png(&it, &rgb)?;
            Ok((split, it))
        })
        .collect::<Result<_>>()?;
    let mut lists: [Vec<Item>; 3] = Default::default();
    for (split, it) in items {
        lists[split as usize].push(it);
    }
    let split_file = info.dataset_dir(root).join(SPLIT_FILE);
    let splits = write_split_file(&split_file, lists)?;
    write_atomic(&stamp_path(name, root), stamp_text(opts).as_bytes())?;
    Ok(splits)
}

fn stamp_text(opts: &ShapesOptions) -> String {
    format!(
        "{opts:?} drawn by subpt-shapes {}\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn stamp_path(name: DatasetName, root: &Path) -> PathBuf {
    name.info().dataset_dir(root).join("prepared.txt")
}

/// `write` unless the dataset already holds a finished drawing with the same options.
/// Returns whether it drew.
pub fn ensure(name: DatasetName, root: &Path, opts: &ShapesOptions) -> Result<bool> {
    let stamp = std::fs::read_to_string(stamp_path(name, root)).ok();
    if stamp.as_deref() == Some(stamp_text(opts).as_str()) {
        return Ok(false);
    }
    write(name, root, opts)?;
    Ok(true)
}

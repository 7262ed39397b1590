//! Writes the shapes world's datasets (`subpt_shapes`) in CoOp's layout:
//! `<root>/<id>/images/<class>/<split>_<index>.png` (32 x 32 RGB PNG) plus `split_shapes.json`.
//! Every image is a pure function of (data seed, dataset, split, class, index), so two machines
//! write the same bytes, and the pretraining corpus (a stream of its own) never repeats them.
use super::catalog::DatasetName;
use super::error::{DataError, Result};
use super::splits::{folder_of, save_png, write_split_file, DatasetSplits, Item, Split};
use crate::io::write_atomic;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
pub use subpt_shapes::RuleKey;
use subpt_shapes::WorldDataset;

pub use super::catalog::SHAPES_SPLIT_FILE as SPLIT_FILE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapesOptions {
    pub train_per_class: usize,
    pub val_per_class: usize,
    pub test_per_class: usize,
    /// Seed of the drawings (the world's data seed, not a training seed).
    pub seed: u64,
    /// Another key for a ruled dataset's base-side patterns than its own (a lever: the README's
    /// "What sets NFL's share").
    pub rule_key: Option<RuleKey>,
}

impl Default for ShapesOptions {
    fn default() -> Self {
        ShapesOptions {
            train_per_class: 16,
            val_per_class: 4,
            test_per_class: 40,
            seed: 0,
            rule_key: None,
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
    let world = *world_dataset(name).expect("a shapes dataset");
    let world = match opts.rule_key {
        None => world,
        Some(key) => world
            .with_rule_key(key)
            .ok_or_else(|| DataError::NoPatternRule {
                dataset: name.id().to_string(),
            })?,
    };
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
    // Spelled as the stamps of drawings made before the rule key existed, so those stay up to
    // date; a key other than the dataset's own is named after it.
    let ShapesOptions {
        train_per_class,
        val_per_class,
        test_per_class,
        seed,
        rule_key,
    } = opts;
    let key = rule_key.map_or(String::new(), |k| format!(" rule key {}", k.id()));
    format!(
        "ShapesOptions {{ train_per_class: {train_per_class}, val_per_class: {val_per_class}, \
         test_per_class: {test_per_class}, seed: {seed} }}{key} drawn by subpt-shapes {}\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawing_stamped_before_rule_keys_is_up_to_date_and_a_keyed_one_is_not() {
        let plain = ShapesOptions::default();
        assert_eq!(
            stamp_text(&plain),
            format!(
                "ShapesOptions {{ train_per_class: 16, val_per_class: 4, test_per_class: 40, \
                 seed: 0 }} drawn by subpt-shapes {}\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        let keyed = ShapesOptions {
            rule_key: Some(RuleKey::Colour),
            ..plain
        };
        assert_ne!(stamp_text(&keyed), stamp_text(&plain));
        assert!(stamp_text(&keyed).contains("rule key colour"));
    }

    #[test]
    fn a_rule_key_on_a_dataset_without_a_rule_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = ShapesOptions {
            rule_key: Some(RuleKey::Colour),
            ..ShapesOptions::default()
        };
        let err = write(DatasetName::Shapes, tmp.path(), &opts).unwrap_err();
        assert!(
            err.to_string().contains("shapes has no pattern rule"),
            "{err}"
        );
    }
}

//! Tiny synthetic datasets in every layout of the catalogue, for tests and demos.
//!
//! `write_fixture` lays out a few classes of small deterministic images (JPEG, or PNG for
//! `fashion_mnist`) exactly as the real dataset is laid out, and returns the `DatasetSplits`
//! a reader must produce from it. Split-file entries are interleaved across classes (a fixed
//! shuffle), so first-appearance grouping in few-shot sampling is exercised.

use super::catalog::{DatasetName, SplitSource};
use super::error::{DataError, Result};
use super::python_random::PyRandom;
use super::splits::{folder_of, DatasetSplits, Item, Split};
use image::{ImageFormat, Rgb, RgbImage};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Shape of a fixture. Per-class counts cycle when shorter than `classes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureOptions {
    pub classes: usize,
    pub train: Vec<usize>,
    /// Ignored where the dataset has no separate val list (ImageNet: val = test).
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub width: u32,
    pub height: u32,
}

impl Default for FixtureOptions {
    /// Five classes; two have fewer than 4 training images.
    fn default() -> Self {
        FixtureOptions {
            classes: 5,
            train: vec![5, 2, 7, 3, 4],
            val: vec![3, 1, 2],
            test: vec![3, 2, 4],
            width: 12,
            height: 10,
        }
    }
}

impl FixtureOptions {
    fn count(&self, split: Split, class: usize) -> usize {
        let v = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        };
        if v.is_empty() {
            0
        } else {
            v[class % v.len()]
        }
    }
}

const WNIDS: [(&str, &str); 8] = [
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
    ("n01496331", "electric ray"),
    ("n01498041", "stingray"),
    ("n01514668", "rooster"),
];

/// A few real class names per dataset (then `class_<i>`), so demos read naturally.
fn real_names(dataset: DatasetName) -> &'static [&'static str] {
    use DatasetName::*;
    match dataset {
        Caltech101 => &["accordion", "airplane", "anchor", "ant", "barrel", "face"],
        OxfordPets => &[
            "abyssinian",
            "american_bulldog",
            "basset_hound",
            "beagle",
            "bengal",
        ],
        StanfordCars => &[
            "2000 AM General Hummer SUV",
            "2012 Acura RL Sedan",
            "2012 Acura TL Sedan",
            "2007 Acura TL Type-S",
            "2012 Acura TSX Sedan",
        ],
        OxfordFlowers => &[
            "pink primrose",
            "hard-leaved pocket orchid",
            "canterbury bells",
            "sweet pea",
        ],
        Food101 => &[
            "apple_pie",
            "baby_back_ribs",
            "baklava",
            "beef_carpaccio",
            "beet_salad",
        ],
        FgvcAircraft => &[
            "707-320",
            "727-200",
            "737-200",
            "A300B4",
            "F-16A/B",
            "Falcon 900",
        ],
        Sun397 => &[
            "abbey",
            "airplane_cabin",
            "outdoor apartment_building",
            "alley",
            "indoor apse",
        ],
        Dtd => &[
            "banded",
            "blotchy",
            "braided",
            "bubbly",
            "bumpy",
            "chequered",
        ],
        EuroSat => &[
            "Annual Crop Land",
            "Forest",
            "Herbaceous Vegetation Land",
            "Highway or Road",
        ],
        Ucf101 => &[
            "Apply_Eye_Makeup",
            "Apply_Lipstick",
            "Archery",
            "Baby_Crawling",
        ],
        FashionMnist | FashionMnistDark | FashionMnistContrast | FashionMnistInvert
        | FashionMnistBlur | FashionMnistNoise => &super::fashion_mnist::CLASSNAMES,
        Shapes | ShapesFaded | ShapesTinted | ShapesBlocky | ShapesRotated | ShapesStyled
        | ShapesRuled | Patterns => &["red circle", "red square", "red triangle"],
        ImageNet | ImageNetV2 | ImageNetSketch | ImageNetA | ImageNetR => &[],
    }
}

fn classname(dataset: DatasetName, class: usize) -> String {
    match real_names(dataset).get(class) {
        Some(n) => n.to_string(),
        None => format!("class_{class}"),
    }
}

fn wnid(class: usize) -> (String, String) {
    match WNIDS.get(class) {
        Some((w, n)) => (w.to_string(), n.to_string()),
        None => (format!("n9{class:07}"), format!("synthetic class {class}")),
    }
}

/// Writes one small image whose pixels depend on `(class, index)` only.
pub fn write_image(path: &Path, class: usize, index: usize, width: u32, height: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let base = [
        (class * 53 + 20) % 256,
        (index * 29 + 90) % 256,
        ((class + index) * 71) % 256,
    ];
    let img = RgbImage::from_fn(width, height, |x, y| {
        let ramp = (x * 7 + y * 3) as usize;
        Rgb(base.map(|b| ((b + ramp) % 256) as u8))
    });
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let format = if ext.eq_ignore_ascii_case("png") {
        ImageFormat::Png
    } else {
        ImageFormat::Jpeg
    };
    img.save_with_format(path, format)
        .map_err(|source| DataError::Image {
            path: path.to_path_buf(),
            source,
        })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// Writes the fixture of `dataset` under `root` (i.e. into `root/<dataset dir>`) and returns
/// the splits its reader must produce.
pub fn write_fixture(
    dataset: DatasetName,
    root: &Path,
    opts: &FixtureOptions,
) -> Result<DatasetSplits> {
    let info = dataset.info();
    let dir = info.dataset_dir(root);
    let image_root = info.image_root(root);
    std::fs::create_dir_all(&image_root).map_err(|e| DataError::io(&image_root, e))?;
    let img = |rel: &str, class: usize, index: usize| -> Result<Item> {
        let it = Item::new(&image_root, rel, class, &classname(dataset, class));
        write_image(&it.impath, class, index, opts.width, opts.height)?;
        Ok(it)
    };
    match info.split {
        SplitSource::SplitJson(file) => {
            let ext = if dataset.is_fashion_mnist() {
                "png"
            } else {
                "jpg"
            };
            let mut lists: Vec<Vec<Item>> = Vec::new();
            for (si, split) in Split::ALL.into_iter().enumerate() {
                let mut items = Vec::new();
                for c in 0..opts.classes {
                    for i in 0..opts.count(split, c) {
                        let rel = relpath_for(dataset, split, c, i, ext);
                        items.push(img(&rel, c, si * 1000 + i)?);
                    }
                }
                PyRandom::new(1234 + si as u64).shuffle(&mut items);
                lists.push(items);
            }
            let entries = |v: &[Item]| -> Value {
                v.iter()
                    .map(|it| json!([it.relpath, it.label, it.classname]))
                    .collect()
            };
            let doc = json!({"train": entries(&lists[0]), "val": entries(&lists[1]), "test": entries(&lists[2])});
            write_text(&dir.join(file), &doc.to_string())?;
            let test = lists.pop().unwrap_or_default();
            let val = lists.pop().unwrap_or_default();
            let train = lists.pop().unwrap_or_default();
            DatasetSplits::from_lists(train, val, test, &dir.join(file))
        }
        SplitSource::AircraftTxt => {
            let names: Vec<String> = (0..opts.classes).map(|c| classname(dataset, c)).collect();
            write_text(&dir.join("variants.txt"), &(names.join("\n") + "\n"))?;
            let mut lists = Vec::new();
            let mut id = 1_000_000;
            for (si, split) in Split::ALL.into_iter().enumerate() {
                let mut items = Vec::new();
                for c in 0..opts.classes {
                    for i in 0..opts.count(split, c) {
                        id += 37;
                        items.push(img(&format!("{id:07}.jpg"), c, si * 1000 + i)?);
                    }
                }
                PyRandom::new(99 + si as u64).shuffle(&mut items);
                let lines: String = items
                    .iter()
                    .map(|it| format!("{} {}\n", it.relpath.trim_end_matches(".jpg"), it.classname))
                    .collect();
                write_text(
                    &dir.join(format!("images_variant_{}.txt", split.key())),
                    &lines,
                )?;
                lists.push(items);
            }
            let test = lists.pop().unwrap_or_default();
            let val = lists.pop().unwrap_or_default();
            let train = lists.pop().unwrap_or_default();
            DatasetSplits::from_lists(train, val, test, &dir.join("variants.txt"))
        }
        SplitSource::ImageNetFolders => {
            write_classnames(&dir, (0..opts.classes).map(wnid))?;
            let folder_items = |split: Split, sub: &str| -> Result<Vec<Item>> {
                let mut items = Vec::new();
                for c in 0..opts.classes {
                    let (w, name) = wnid(c);
                    for i in 0..opts.count(split, c) {
                        let rel = format!("{sub}/{w}/{w}_{i:04}.JPEG");
                        let it = Item::new(&image_root, &rel, c, &name);
                        write_image(&it.impath, c, i, opts.width, opts.height)?;
                        items.push(it);
                    }
                }
                Ok(items)
            };
            let train = folder_items(Split::Train, "train")?;
            let test = folder_items(Split::Test, "val")?;
            DatasetSplits::from_lists(train, test.clone(), test, &image_root)
        }
        SplitSource::IndexFolders | SplitSource::WnidFolders => {
            write_variant(dataset, &dir, &image_root, opts)
        }
    }
}

fn relpath_for(dataset: DatasetName, split: Split, class: usize, i: usize, ext: &str) -> String {
    let folder = folder_of(&classname(dataset, class));
    match dataset {
        // Flat image directories in the real datasets.
        DatasetName::OxfordPets | DatasetName::OxfordFlowers => {
            format!("{folder}_{}_{i}.{ext}", split.key())
        }
        DatasetName::StanfordCars => {
            let sub = if split == Split::Test {
                "cars_test"
            } else {
                "cars_train"
            };
            format!(
                "{sub}/{:05}.{ext}",
                class * 1000 + i + 1 + (split as usize) * 100
            )
        }
        _ => format!("{folder}/{}_{i:04}.{ext}", split.key()),
    }
}

fn write_classnames(dir: &Path, rows: impl Iterator<Item = (String, String)>) -> Result<()> {
    let text: String = rows.map(|(w, n)| format!("{w} {n}\n")).collect();
    write_text(&dir.join("classnames.txt"), &text)
}

/// ImageNet variants: test only. `classnames.txt` lists two more classes than have folders for
/// -A and -R (in the real data they use the 1000-class file with 200 folders).
fn write_variant(
    dataset: DatasetName,
    dir: &Path,
    image_root: &Path,
    opts: &FixtureOptions,
) -> Result<DatasetSplits> {
    let subset = matches!(dataset, DatasetName::ImageNetA | DatasetName::ImageNetR);
    let listed = if subset {
        opts.classes + 2
    } else {
        opts.classes
    };
    // -A / -R: listed classes 1 and 3 have no folder, so labels differ from list positions.
    let present: Vec<usize> = if subset {
        (0..listed)
            .filter(|c| *c != 1 && *c != 3)
            .take(opts.classes)
            .collect()
    } else {
        (0..opts.classes).collect()
    };
    write_classnames(dir, (0..listed).map(wnid))?;
    if subset {
        write_text(&image_root.join("README.txt"), "not a class folder\n")?;
    }
    let mut test = Vec::new();
    for (label, &c) in present.iter().enumerate() {
        let (w, name) = wnid(c);
        let folder = if dataset == DatasetName::ImageNetV2 {
            c.to_string()
        } else {
            w
        };
        std::fs::create_dir_all(image_root.join(&folder))
            .map_err(|e| DataError::io(image_root, e))?;
        for i in 0..opts.count(Split::Test, label) {
            let ext = if dataset == DatasetName::ImageNetV2 {
                "jpeg"
            } else {
                "JPEG"
            };
            let it = Item::new(image_root, &format!("{folder}/{i:04}.{ext}"), label, &name);
            write_image(&it.impath, c, i, opts.width, opts.height)?;
            test.push(it);
        }
    }
    let classnames = present.iter().map(|&c| wnid(c).1).collect();
    DatasetSplits::test_only(test, classnames, image_root)
}

/// Writes the fixture of every dataset under `root`.
pub fn write_all_fixtures(
    root: &Path,
    opts: &FixtureOptions,
) -> Result<Vec<(DatasetName, DatasetSplits)>> {
    DatasetName::ALL
        .iter()
        .map(|&d| Ok((d, write_fixture(d, root, opts)?)))
        .collect()
}

/// The image root of a fixture (convenience for tests that corrupt files).
pub fn image_root(dataset: DatasetName, root: &Path) -> PathBuf {
    dataset.info().image_root(root)
}

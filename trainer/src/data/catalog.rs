//! The datasets we know: one row of metadata each (spec §3.1 and §4.1).

use super::error::DataError;
use std::path::{Path, PathBuf};

/// How a dataset's split lists are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitSource {
    /// CoOp's `split_zhou_*.json` (or our `split_fashion_mnist.json`) in the dataset dir.
    SplitJson(&'static str),
    /// ImageNet: `classnames.txt` + `images/{train,val}/<wnid>/`, labels in sorted-wnid order.
    ImageNetFolders,
    /// FGVCAircraft: `variants.txt` + `images_variant_{train,val,test}.txt`.
    AircraftTxt,
    /// ImageNetV2: folder `<i>` holds class `i` (line `i` of `classnames.txt`).
    IndexFolders,
    /// ImageNet-Sketch / -A / -R: sorted `<wnid>` folders, names from `classnames.txt`.
    WnidFolders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetName {
    ImageNet,
    Caltech101,
    OxfordPets,
    StanfordCars,
    OxfordFlowers,
    Food101,
    FgvcAircraft,
    Sun397,
    Dtd,
    EuroSat,
    Ucf101,
    ImageNetV2,
    ImageNetSketch,
    ImageNetA,
    ImageNetR,
    FashionMnist,
    FashionMnistDark,
    FashionMnistContrast,
    FashionMnistInvert,
    FashionMnistBlur,
    FashionMnistNoise,
    Shapes,
    ShapesFaded,
    ShapesTinted,
    ShapesBlocky,
    ShapesRotated,
    ShapesStyled,
    ShapesRuled,
    Patterns,
}

/// Metadata of one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetInfo {
    pub name: DatasetName,
    /// Lower-case CLI name (`caltech101`).
    pub id: &'static str,
    /// Dassl/CoOp config name (`Caltech101`).
    pub config_name: &'static str,
    /// Directory under the data root.
    pub dir: &'static str,
    /// Directory under `dir` that split relpaths are relative to ("" = `dir` itself).
    pub image_dir: &'static str,
    pub split: SplitSource,
    /// Class count of the real dataset (fixtures have fewer).
    pub num_classes: usize,
    /// Test images of the real dataset's split (the CoOp papers' counts).
    pub num_test: usize,
    /// Zero-shot prompt template (`{}` = class name with `_` turned into spaces).
    pub template: &'static str,
    /// Only a test split (domain-generalisation targets).
    pub test_only: bool,
}

const PHOTO: &str = "a photo of a {}.";

macro_rules! row {
    ($name:ident, $id:literal, $cfg:literal, $dir:literal, $img:literal, $split:expr, $n:literal, $test:literal, $tpl:expr, $test_only:literal) => {
        DatasetInfo {
            name: DatasetName::$name,
            id: $id,
            config_name: $cfg,
            dir: $dir,
            image_dir: $img,
            split: $split,
            num_classes: $n,
            num_test: $test,
            template: $tpl,
            test_only: $test_only,
        }
    };
}

use SplitSource::*;

/// All datasets, in `DatasetName` order.
#[rustfmt::skip]
/// The split file every shapes dataset has (written by `shapes::write`).
pub const SHAPES_SPLIT_FILE: &str = "split_shapes.json";

pub const DATASETS: [DatasetInfo; 29] = [
    row!(
        ImageNet,
        "imagenet",
        "ImageNet",
        "imagenet",
        "images",
        ImageNetFolders,
        1000,
        50_000,
        PHOTO,
        false
    ),
    row!(
        Caltech101,
        "caltech101",
        "Caltech101",
        "caltech-101",
        "101_ObjectCategories",
        SplitJson("split_zhou_Caltech101.json"),
        100,
        2_465,
        PHOTO,
        false
    ),
    row!(
        OxfordPets,
        "oxford_pets",
        "OxfordPets",
        "oxford_pets",
        "images",
        SplitJson("split_zhou_OxfordPets.json"),
        37,
        3_669,
        "a photo of a {}, a type of pet.",
        false
    ),
    row!(
        StanfordCars,
        "stanford_cars",
        "StanfordCars",
        "stanford_cars",
        "",
        SplitJson("split_zhou_StanfordCars.json"),
        196,
        8_041,
        PHOTO,
        false
    ),
    row!(
        OxfordFlowers,
        "oxford_flowers",
        "OxfordFlowers",
        "oxford_flowers",
        "jpg",
        SplitJson("split_zhou_OxfordFlowers.json"),
        102,
        2_463,
        "a photo of a {}, a type of flower.",
        false
    ),
    row!(
        Food101,
        "food101",
        "Food101",
        "food-101",
        "images",
        SplitJson("split_zhou_Food101.json"),
        101,
        30_300,
        "a photo of {}, a type of food.",
        false
    ),
    row!(
        FgvcAircraft,
        "fgvc_aircraft",
        "FGVCAircraft",
        "fgvc_aircraft",
        "images",
        AircraftTxt,
        100,
        3_333,
        "a photo of a {}, a type of aircraft.",
        false
    ),
    row!(
        Sun397,
        "sun397",
        "SUN397",
        "sun397",
        "SUN397",
        SplitJson("split_zhou_SUN397.json"),
        397,
        19_850,
        PHOTO,
        false
    ),
    row!(
        Dtd,
        "dtd",
        "DescribableTextures",
        "dtd",
        "images",
        SplitJson("split_zhou_DescribableTextures.json"),
        47,
        1_692,
        "{} texture.",
        false
    ),
    row!(
        EuroSat,
        "eurosat",
        "EuroSAT",
        "eurosat",
        "2750",
        SplitJson("split_zhou_EuroSAT.json"),
        10,
        8_100,
        "a centered satellite photo of {}.",
        false
    ),
    row!(
        Ucf101,
        "ucf101",
        "UCF101",
        "ucf101",
        "UCF-101-midframes",
        SplitJson("split_zhou_UCF101.json"),
        101,
        3_783,
        "a photo of a person doing {}.",
        false
    ),
    row!(
        ImageNetV2,
        "imagenetv2",
        "ImageNetV2",
        "imagenetv2",
        "imagenetv2-matched-frequency-format-val",
        IndexFolders,
        1000,
        10_000,
        PHOTO,
        true
    ),
    row!(
        ImageNetSketch,
        "imagenet_sketch",
        "ImageNetSketch",
        "imagenet-sketch",
        "images",
        WnidFolders,
        1000,
        50_889,
        PHOTO,
        true
    ),
    row!(
        ImageNetA,
        "imagenet_a",
        "ImageNetA",
        "imagenet-adversarial",
        "imagenet-a",
        WnidFolders,
        200,
        7_500,
        PHOTO,
        true
    ),
    row!(
        ImageNetR,
        "imagenet_r",
        "ImageNetR",
        "imagenet-rendition",
        "imagenet-r",
        WnidFolders,
        200,
        30_000,
        PHOTO,
        true
    ),
    // Embedded data converted from Debian's idx files (see `fashion_mnist`), and shifted copies
    // of it (see `corruption`): trainable, and domain-generalisation targets of the clean one.
    row!(
        FashionMnist,
        "fashion_mnist",
        "FashionMNIST",
        "fashion_mnist",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    row!(
        FashionMnistDark,
        "fashion_mnist_dark",
        "FashionMNISTDark",
        "fashion_mnist_dark",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    row!(
        FashionMnistContrast,
        "fashion_mnist_contrast",
        "FashionMNISTContrast",
        "fashion_mnist_contrast",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    row!(
        FashionMnistInvert,
        "fashion_mnist_invert",
        "FashionMNISTInvert",
        "fashion_mnist_invert",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    row!(
        FashionMnistBlur,
        "fashion_mnist_blur",
        "FashionMNISTBlur",
        "fashion_mnist_blur",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    row!(
        FashionMnistNoise,
        "fashion_mnist_noise",
        "FashionMNISTNoise",
        "fashion_mnist_noise",
        "images",
        SplitJson("split_fashion_mnist.json"),
        10,
        10_000,
        PHOTO,
        false
    ),
    // The shapes world (see `shapes` and the subpt-shapes crate): drawn at 32 px, the embedded
    // CLIP's downstream data. Classes are combinations of attributes ("red circle").
    row!(
        Shapes,
        "shapes",
        "Shapes",
        "shapes",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesFaded,
        "shapes_faded",
        "ShapesFaded",
        "shapes_faded",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesTinted,
        "shapes_tinted",
        "ShapesTinted",
        "shapes_tinted",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesBlocky,
        "shapes_blocky",
        "ShapesBlocky",
        "shapes_blocky",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesRotated,
        "shapes_rotated",
        "ShapesRotated",
        "shapes_rotated",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesStyled,
        "shapes_styled",
        "ShapesStyled",
        "shapes_styled",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        ShapesRuled,
        "shapes_ruled",
        "ShapesRuled",
        "shapes_ruled",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        100,
        4_000,
        PHOTO,
        false
    ),
    row!(
        Patterns,
        "patterns",
        "Patterns",
        "patterns",
        "images",
        SplitJson(SHAPES_SPLIT_FILE),
        50,
        2_000,
        PHOTO,
        false
    ),
];

impl DatasetName {
    pub const ALL: [DatasetName; DATASETS.len()] = {
        let mut out = [DatasetName::ImageNet; DATASETS.len()];
        let mut i = 0;
        while i < DATASETS.len() {
            out[i] = DATASETS[i].name;
            i += 1;
        }
        out
    };

    /// The 11 few-shot / base-to-new datasets of CoOp.
    pub const COOP_11: [DatasetName; 11] = [
        DatasetName::ImageNet,
        DatasetName::Caltech101,
        DatasetName::OxfordPets,
        DatasetName::StanfordCars,
        DatasetName::OxfordFlowers,
        DatasetName::Food101,
        DatasetName::FgvcAircraft,
        DatasetName::Sun397,
        DatasetName::Dtd,
        DatasetName::EuroSat,
        DatasetName::Ucf101,
    ];

    pub fn info(self) -> &'static DatasetInfo {
        &DATASETS[self as usize]
    }

    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// A dataset of the shapes world (the embedded CLIP's downstream data).
    pub fn is_shapes(self) -> bool {
        self.info().split == SplitJson(SHAPES_SPLIT_FILE)
    }

    /// The embedded Fashion-MNIST data and its shifted copies.
    pub fn is_fashion_mnist(self) -> bool {
        self.info().split == SplitJson("split_fashion_mnist.json")
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for DatasetName {
    type Err = DataError;
    /// Accepts the lower-case ids; the Dassl config names are accepted too.
    fn from_str(s: &str) -> Result<Self, DataError> {
        DATASETS
            .iter()
            .find(|d| d.id == s || d.config_name == s)
            .map(|d| d.name)
            .ok_or_else(|| DataError::UnknownDataset {
                name: s.to_string(),
                known: DATASETS.iter().map(|d| d.id).collect::<Vec<_>>().join(", "),
            })
    }
}

/// Specs and results name a dataset by its id. Reading also takes a Dassl config name
/// (`Caltech101`), as the command line does; it is written back as the id.
impl serde::Serialize for DatasetName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for DatasetName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl DatasetInfo {
    pub fn dataset_dir(&self, root: &Path) -> PathBuf {
        root.join(self.dir)
    }

    /// The directory `Item::relpath` is relative to.
    pub fn image_root(&self, root: &Path) -> PathBuf {
        let d = self.dataset_dir(root);
        if self.image_dir.is_empty() {
            d
        } else {
            d.join(self.image_dir)
        }
    }

    /// Dassl's few-shot cache directory (`<dataset dir>/split_fewshot`).
    pub fn split_fewshot_dir(&self, root: &Path) -> PathBuf {
        self.dataset_dir(root).join("split_fewshot")
    }

    /// The zero-shot prompt for a class name (`_` become spaces first, as CoOp does).
    pub fn prompt(&self, classname: &str) -> String {
        self.template.replace("{}", &classname.replace('_', " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_name_and_ids_parse_back() {
        for (i, d) in DATASETS.iter().enumerate() {
            assert_eq!(d.name as usize, i);
            assert_eq!(d.id.parse::<DatasetName>().unwrap(), d.name);
            assert_eq!(d.config_name.parse::<DatasetName>().unwrap(), d.name);
        }
        let err = "cifar10".parse::<DatasetName>().unwrap_err().to_string();
        assert!(
            err.contains("cifar10") && err.contains("imagenet_sketch"),
            "{err}"
        );
    }

    /// Specs and results name datasets by id; a config name is read as its dataset and
    /// written back as the id (so a spec spelt `Caltech101` gets the id's hash).
    #[test]
    fn specs_name_datasets_by_id() {
        for d in DATASETS {
            let json = serde_json::to_string(&d.name).unwrap();
            assert_eq!(json, format!("\"{}\"", d.id));
            assert_eq!(serde_json::from_str::<DatasetName>(&json).unwrap(), d.name);
        }
        let c: DatasetName = serde_json::from_str("\"Caltech101\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"caltech101\"");
        let err = serde_json::from_str::<DatasetName>("\"cifar10\"").unwrap_err();
        assert!(err.to_string().contains("imagenet_sketch"), "{err}");
    }

    #[test]
    fn prompts_follow_the_zero_shot_templates() {
        assert_eq!(
            DatasetName::Ucf101.info().prompt("Apply_Eye_Makeup"),
            "a photo of a person doing Apply Eye Makeup."
        );
        assert_eq!(DatasetName::Dtd.info().prompt("banded"), "banded texture.");
        assert_eq!(
            DatasetName::ImageNetR.info().prompt("goldfish"),
            "a photo of a goldfish."
        );
    }
}

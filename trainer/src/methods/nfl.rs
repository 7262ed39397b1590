//! NFL (novel feature learner): keeps the learned context's text features of extra class names
//! (no images) close to zero-shot CLIP's features of the same names.
use super::prompt_learner::{PromptLearner, PromptSet};
use crate::clip::{normalize, Clip};
use crate::data::DatasetName;
use tch::{Kind, Tensor};

/// The extra names' prompts and their frozen, L2-normalised zero-shot targets.
pub struct Nfl {
    pub prompts: PromptSet,
    /// [n_names, embed], unit rows.
    pub targets: Tensor,
    pub lambda: f64,
}

impl Nfl {
    /// `lambda * mean_i (1 - cos(t_i, z_i))`, as `CosineEmbeddingLoss` with target +1.
    pub fn loss(&self, clip: &Clip, learner: &PromptLearner) -> Tensor {
        let t = normalize(&learner.extra_features(clip, &self.prompts));
        let z = self.targets.to_device(t.device()).to_kind(Kind::Float);
        let cos = (&t * &z).sum_dim_intlist(-1, false, Kind::Float);
        (cos.neg() + 1.0).mean(Kind::Float) * self.lambda
    }
}

/// The names NFL keeps close to zero-shot CLIP. Written in specs and grids as one string, as
/// the paper's scripts name them: `imagenet_100`, `novel`, a dataset id whose list the paper's
/// code ships (`dtd`, ...), the embedded data's `fashion_mnist_synonyms` / `shapes_extra`, or
/// any other text as a path to a file of names, one per line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NflNames {
    /// The paper's ImageNet-100 list (few-shot runs on real data).
    ImageNet100,
    /// The dataset's own new-half class names, in label order (base-to-novel).
    Novel,
    /// The list the paper's code ships for a dataset (its novel-class names).
    Paper(DatasetName),
    /// The embedded Fashion-MNIST's few-shot list: the other names its pretraining captions
    /// use for each class (ImageNet's names are words the embedded CLIP never read).
    FashionMnistSynonyms,
    /// The shapes world's few-shot list: 100 names no dataset of it uses as a class.
    ShapesExtra,
    /// A file of names, one per line.
    File(std::path::PathBuf),
}

/// The datasets whose NFL lists the paper's code ships, with the lists.
const PAPER_LISTS: [(DatasetName, &str); 11] = [
    (
        DatasetName::ImageNet,
        include_str!("../../../assets/classnames_nfl_imagenet.txt"),
    ),
    (
        DatasetName::Caltech101,
        include_str!("../../../assets/classnames_nfl_caltech101.txt"),
    ),
    (
        DatasetName::Dtd,
        include_str!("../../../assets/classnames_nfl_dtd.txt"),
    ),
    (
        DatasetName::EuroSat,
        include_str!("../../../assets/classnames_nfl_eurosat.txt"),
    ),
    (
        DatasetName::FgvcAircraft,
        include_str!("../../../assets/classnames_nfl_fgvc_aircraft.txt"),
    ),
    (
        DatasetName::Food101,
        include_str!("../../../assets/classnames_nfl_food101.txt"),
    ),
    (
        DatasetName::OxfordFlowers,
        include_str!("../../../assets/classnames_nfl_oxford_flowers.txt"),
    ),
    (
        DatasetName::OxfordPets,
        include_str!("../../../assets/classnames_nfl_oxford_pets.txt"),
    ),
    (
        DatasetName::StanfordCars,
        include_str!("../../../assets/classnames_nfl_stanford_cars.txt"),
    ),
    (
        DatasetName::Sun397,
        include_str!("../../../assets/classnames_nfl_sun397.txt"),
    ),
    (
        DatasetName::Ucf101,
        include_str!("../../../assets/classnames_nfl_ucf101.txt"),
    ),
];

impl NflNames {
    /// The words as specs spell them.
    pub fn spelled(&self) -> String {
        match self {
            NflNames::ImageNet100 => "imagenet_100".into(),
            NflNames::Novel => "novel".into(),
            NflNames::Paper(d) => d.id().into(),
            NflNames::FashionMnistSynonyms => "fashion_mnist_synonyms".into(),
            NflNames::ShapesExtra => "shapes_extra".into(),
            NflNames::File(p) => p.display().to_string(),
        }
    }

    /// The names, given the dataset's novel-class names for `Novel`.
    pub fn names(&self, novel: &[String]) -> Result<Vec<String>, crate::io::IoError> {
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        Ok(match self {
            NflNames::ImageNet100 => lines(include_str!(
                "../../../assets/classnames_nfl_imagenet_100.txt"
            )),
            NflNames::Novel => novel.to_vec(),
            NflNames::Paper(d) => PAPER_LISTS
                .iter()
                .find(|(p, _)| p == d)
                .map(|(_, text)| lines(text))
                .unwrap_or_default(),
            NflNames::FashionMnistSynonyms => crate::data::fashion_mnist::SYNONYMS
                .iter()
                .flat_map(|s| s.iter())
                .map(|s| s.to_string())
                .collect(),
            NflNames::ShapesExtra => subpt_shapes::datasets::extra_names(),
            NflNames::File(p) => lines(&crate::io::read_to_string(p)?),
        })
    }
}

impl From<&str> for NflNames {
    fn from(s: &str) -> Self {
        match s {
            "imagenet_100" => NflNames::ImageNet100,
            "novel" => NflNames::Novel,
            "fashion_mnist_synonyms" => NflNames::FashionMnistSynonyms,
            "shapes_extra" => NflNames::ShapesExtra,
            _ => match PAPER_LISTS.iter().find(|(d, _)| d.id() == s) {
                Some((d, _)) => NflNames::Paper(*d),
                None => NflNames::File(s.into()),
            },
        }
    }
}

impl std::fmt::Display for NflNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spelled())
    }
}

impl serde::Serialize for NflNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.spelled())
    }
}

impl<'de> serde::Deserialize<'de> for NflNames {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(String::deserialize(d)?.as_str().into())
    }
}

/// NFL's names, their prompts with `learner`'s context layout and their zero-shot targets for
/// the cell `cx`; `novel` are the dataset's new-half class names, in label order.
pub fn build(
    cx: &super::TrainCx,
    learner: &PromptLearner,
    (list, lambda): (&NflNames, f64),
    novel: &[String],
) -> Result<Nfl, crate::engine::error::RunError> {
    use super::zeroshot::{cached_text_features, ensemble_templates};
    let dataset = cx.spec.dataset;
    // "novel": the dataset's new-half class names, in label order (what the paper's
    // base-to-novel lists hold), derived from the data so any dataset works.
    let names = list.names(novel)?;
    // imagenet_100 are ImageNet names: the ImageNet rule (80 templates only) applies; a
    // dataset's own novel names get its custom template too.
    let own = (*list != NflNames::ImageNet100 && dataset != DatasetName::ImageNet)
        .then(|| dataset.info().template);
    let templates = ensemble_templates(own);
    let targets = cached_text_features(cx.frozen, &names, &templates)?;
    Ok(Nfl {
        prompts: PromptSet::new(
            cx.frozen.clip,
            cx.tok,
            &names,
            &learner.ctx_words,
            learner.config.effective_n_ctx(),
        )?,
        targets,
        lambda,
    })
}

#[cfg(test)]
mod tests {
    use super::NflNames;

    #[test]
    fn shipped_lists_have_the_papers_sizes() {
        for (name, n) in [
            ("fashion_mnist_synonyms", 50),
            ("shapes_extra", 100),
            ("imagenet_100", 100),
            ("imagenet", 500),
            ("caltech101", 50),
            ("dtd", 23),
            ("eurosat", 5),
            ("fgvc_aircraft", 50),
            ("food101", 50),
            ("oxford_flowers", 51),
            ("oxford_pets", 18),
            ("stanford_cars", 98),
            ("sun397", 198),
            ("ucf101", 50),
        ] {
            let list = NflNames::from(name);
            assert!(!matches!(list, NflNames::File(_)), "{name}");
            assert_eq!(list.names(&[]).unwrap().len(), n, "{name}");
            // Specs spell it as the paper's scripts do: the same JSON, so the same cell ids.
            assert_eq!(serde_json::to_value(&list).unwrap(), name);
        }
        let novel = ["a".to_string(), "b".to_string()];
        assert_eq!(NflNames::from("novel").names(&novel).unwrap(), novel);
        // Any other text is a file of names; a missing one names its path.
        let file = NflNames::from("lists/mine.txt");
        assert_eq!(file, NflNames::File("lists/mine.txt".into()));
        assert!(file
            .names(&[])
            .unwrap_err()
            .to_string()
            .contains("lists/mine.txt"));
    }
}

//! NFL (novel feature learner): keeps the learned context's text features of extra class names
//! (no images) close to zero-shot CLIP's features of the same names.
use super::prompt_learner::{PromptLearner, PromptSet};
use crate::clip::{normalize, Clip};
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

/// NFL's name lists shipped with the paper's code: `imagenet_100` (few-shot runs) or a
/// dataset id (its novel-class names, for base-to-novel runs); and `fashion_mnist_synonyms`,
/// the few-shot list of the embedded data: the other names its pretraining captions use for
/// each class (ImageNet's names are words the embedded CLIP never read).
pub fn name_list(list: &str) -> Option<Vec<String>> {
    if list == SHAPES_EXTRA {
        return Some(subpt_shapes::datasets::extra_names());
    }
    if list == FASHION_MNIST_SYNONYMS {
        let names = crate::data::fashion_mnist::SYNONYMS
            .iter()
            .flat_map(|s| s.iter());
        return Some(names.map(|s| s.to_string()).collect());
    }
    let text = match list {
        "imagenet_100" => include_str!("../../../assets/classnames_nfl_imagenet_100.txt"),
        "imagenet" => include_str!("../../../assets/classnames_nfl_imagenet.txt"),
        "caltech101" => include_str!("../../../assets/classnames_nfl_caltech101.txt"),
        "dtd" => include_str!("../../../assets/classnames_nfl_dtd.txt"),
        "eurosat" => include_str!("../../../assets/classnames_nfl_eurosat.txt"),
        "fgvc_aircraft" => include_str!("../../../assets/classnames_nfl_fgvc_aircraft.txt"),
        "food101" => include_str!("../../../assets/classnames_nfl_food101.txt"),
        "oxford_flowers" => include_str!("../../../assets/classnames_nfl_oxford_flowers.txt"),
        "oxford_pets" => include_str!("../../../assets/classnames_nfl_oxford_pets.txt"),
        "stanford_cars" => include_str!("../../../assets/classnames_nfl_stanford_cars.txt"),
        "sun397" => include_str!("../../../assets/classnames_nfl_sun397.txt"),
        "ucf101" => include_str!("../../../assets/classnames_nfl_ucf101.txt"),
        _ => return None,
    };
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// The few-shot NFL list of the embedded Fashion-MNIST datasets.
pub const FASHION_MNIST_SYNONYMS: &str = "fashion_mnist_synonyms";

/// The few-shot NFL list of the shapes world: 100 names no dataset of it uses as a class.
pub const SHAPES_EXTRA: &str = "shapes_extra";

/// NFL's names, their prompts with `learner`'s context layout and their zero-shot targets for
/// the cell `cx`; `novel` are the dataset's new-half class names, in label order.
pub fn build(
    cx: &super::TrainCx,
    learner: &PromptLearner,
    n: &crate::engine::spec::NflSpec,
    novel: &[String],
) -> Result<Nfl, crate::engine::error::RunError> {
    use super::zeroshot::{cached_text_features, ensemble_templates};
    use crate::data::DatasetName;
    let dataset = cx.spec.dataset;
    // "novel": the dataset's new-half class names, in label order (what the paper's
    // base-to-novel lists hold), derived from the data so any dataset works.
    let names = match name_list(&n.names) {
        _ if n.names == "novel" => novel.to_vec(),
        Some(v) => v,
        None => crate::io::read_to_string(&n.names)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
    };
    // imagenet_100 are ImageNet names: the ImageNet rule (80 templates only) applies; a
    // dataset's own novel names get its custom template too.
    let own = (n.names != "imagenet_100" && dataset != DatasetName::ImageNet)
        .then(|| dataset.info().template);
    let templates = ensemble_templates(own);
    let targets = cached_text_features(cx.cache, cx.clip, cx.digest, &names, &templates)?;
    Ok(Nfl {
        prompts: PromptSet::new(
            cx.clip,
            cx.tok,
            &names,
            &learner.ctx_words,
            learner.config.effective_n_ctx(),
        )?,
        targets,
        lambda: n.lambda,
    })
}

#[cfg(test)]
mod tests {
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
            assert_eq!(super::name_list(name).unwrap().len(), n, "{name}");
        }
        assert!(super::name_list("nope").is_none());
    }
}

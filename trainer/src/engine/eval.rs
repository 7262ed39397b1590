//! Test-split evaluation from cached frozen image features.
use super::spec::RunSpec;
use crate::clip::logits;
use crate::data::{Item, SubsampleClasses};
pub use crate::features::Frozen;
use crate::features::{split_features, SplitKey};
use tch::{Kind, Tensor};

/// A class subset's test items and class names (labels index `classnames`).
pub struct EvalSet {
    pub name: SubsampleClasses,
    pub classnames: Vec<String>,
    pub items: Vec<Item>,
    /// `digest::items_digest` of `items`: computed once where the set is made, read by the
    /// identity and the feature-cache key.
    pub digest: String,
}

pub struct EvalResult {
    /// Top-1 accuracy in percent.
    pub accuracy: f64,
    /// Per-class accuracy in percent, by label (`None` for classes without test items).
    pub per_class: Vec<Option<f64>>,
}

/// What a cell classifies test images with, as its learner (or zero-shot CLIP) returns it.
pub enum Classifier<'a> {
    /// Class text features [n_cls, embed] under CLIP's cosine head (zero-shot CLIP, CoOp).
    Text(Tensor),
    /// Logits that depend on each image (CoCoOp's meta-network shifts the prompts per image).
    PerImage(Box<dyn Fn(&Tensor) -> Tensor + 'a>),
}

/// Accuracy of `classifier` on `set`'s test images: the one evaluation every cell goes
/// through.
pub fn evaluate(
    f: Frozen,
    spec: &RunSpec,
    set: &EvalSet,
    classifier: &Classifier,
) -> Result<EvalResult, crate::features::FeatureError> {
    match classifier {
        Classifier::Text(text) => evaluate_with(f, spec, set, |img| logits(f.clip, img, text)),
        Classifier::PerImage(classify) => evaluate_with(f, spec, set, classify),
    }
}

/// Accuracy of any classifier of (cached, frozen) image features.
fn evaluate_with(
    Frozen {
        clip,
        cache,
        digest: weights_digest,
    }: Frozen,
    spec: &RunSpec,
    set: &EvalSet,
    classify: impl Fn(&Tensor) -> Tensor,
) -> Result<EvalResult, crate::features::FeatureError> {
    let key = SplitKey::new(
        weights_digest,
        clip,
        spec.dataset.id(),
        &format!("test-{}", set.name),
        &set.digest,
    );
    let (img, labels, _) = split_features(clip, &key, &set.items, cache, 100)?;
    let img = img.to_device(clip.device);
    let n = img.size()[0];
    let mut preds = Vec::new();
    // Chunks bound the memory of per-image classifiers (CoCoOp builds prompts per image).
    for start in (0..n).step_by(100) {
        let chunk = img.narrow(0, start, 100.min(n - start));
        let logits = tch::no_grad(|| classify(&chunk));
        // argmax over NaN logits still names a class: a broken model must not score.
        if !crate::clip::all_finite(&logits) {
            return Err(crate::features::FeatureError::NonFinite {
                what: "logits",
                split: set.name.to_string(),
            });
        }
        preds.push(logits.argmax(-1, false));
    }
    let pred = if preds.is_empty() {
        Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu))
    } else {
        Tensor::cat(&preds, 0).to_device(tch::Device::Cpu)
    };
    Ok(score(&pred, &labels, set.classnames.len()))
}

/// Accuracy and per-class accuracy of predictions.
pub fn score(pred: &Tensor, labels: &Tensor, n_classes: usize) -> EvalResult {
    let pred = Vec::<i64>::try_from(pred.to_kind(Kind::Int64)).expect("1-d predictions");
    let labels = Vec::<i64>::try_from(labels.to_kind(Kind::Int64)).expect("1-d labels");
    let mut hit = vec![0usize; n_classes];
    let mut total = vec![0usize; n_classes];
    for (p, l) in pred.iter().zip(&labels) {
        total[*l as usize] += 1;
        if p == l {
            hit[*l as usize] += 1;
        }
    }
    let correct: usize = hit.iter().sum();
    let n = labels.len().max(1);
    EvalResult {
        accuracy: 100.0 * correct as f64 / n as f64,
        per_class: hit
            .iter()
            .zip(&total)
            .map(|(&h, &t)| (t > 0).then(|| 100.0 * h as f64 / t as f64))
            .collect(),
    }
}

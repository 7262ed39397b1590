//! Frozen image features of a dataset split, encoded once per (weights, precision, dataset,
//! split, item list, transform) and served from the [`FeatureCache`] to every cell and rank.
use crate::cache::{FeatureCache, Outcome};
use crate::clip::Clip;
use crate::data::loader::Prefetch;
use crate::data::transforms::TestTransform;
use crate::data::Item;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Clip(#[from] crate::clip::ClipError),
    #[error(transparent)]
    Load(#[from] crate::data::loader::LoadError),
    #[error(transparent)]
    Transform(#[from] crate::data::transforms::TransformError),
    #[error("{what} of the `{split}` test images are NaN or infinite: the model is broken")]
    NonFinite { what: &'static str, split: String },
}

/// Everything that changes the features of a split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitKey {
    /// Content digest of the weights file.
    pub weights: String,
    pub precision: String,
    pub dataset: String,
    pub split: String,
    /// Content digest of the ordered items (`digest::items_digest`: paths, labels, class names
    /// and every image's bytes), so a changed subset, relabelling or pixel misses.
    pub items: String,
    /// The test transform: bicubic shorter-side resize + centre crop at this size, CLIP mean/std.
    pub transform: String,
}

impl SplitKey {
    /// `items_digest`: `digest::items_digest` of the split's items (an `EvalSet` carries it).
    pub fn new(weights: &str, clip: &Clip, dataset: &str, split: &str, items_digest: &str) -> Self {
        SplitKey {
            weights: weights.to_string(),
            precision: clip.precision.to_string(),
            dataset: dataset.to_string(),
            split: split.to_string(),
            items: items_digest.to_string(),
            transform: format!(
                "test-bicubic-center-{}-clipnorm",
                clip.config.vision.resolution()
            ),
        }
    }
}

/// Unnormalised image features `[N, embed]` (fp32, CPU) and labels `[N]` of `items`, in order.
pub fn split_features(
    clip: &Clip,
    key: &SplitKey,
    items: &[Item],
    cache: &FeatureCache,
    batch_size: usize,
) -> Result<(Tensor, Tensor, Outcome), FeatureError> {
    let (t, outcome) = cache.get_or_compute("image", key, || -> Result<_, FeatureError> {
        let pairs: Arc<Vec<(PathBuf, i64)>> = Arc::new(
            items
                .iter()
                .map(|i| (i.impath.clone(), i.label as i64))
                .collect(),
        );
        let transform = TestTransform::new(clip.config.vision.resolution() as usize)?;
        let mut feats = Vec::new();
        let mut labels = Vec::new();
        for batch in Prefetch::test(pairs, batch_size, transform)? {
            let b = batch?;
            feats.push(tch::no_grad(|| clip.encode_image(&b.images)).to_device(tch::Device::Cpu));
            labels.push(b.labels);
        }
        let embed = clip.config.embed_dim;
        let f = if feats.is_empty() {
            Tensor::zeros([0, embed], (Kind::Float, tch::Device::Cpu))
        } else {
            Tensor::cat(&feats, 0)
        };
        let l = if labels.is_empty() {
            Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu))
        } else {
            Tensor::cat(&labels, 0)
        };
        Ok(vec![("features".to_string(), f), ("labels".to_string(), l)])
    })?;
    let mut map: std::collections::HashMap<String, Tensor> = t.into_iter().collect();
    Ok((
        map.remove("features").expect("stored with features"),
        map.remove("labels").expect("stored with labels"),
        outcome,
    ))
}

/// The frozen CLIP, the feature cache and the weights' digest its entries are keyed by: what
/// every evaluation and every cached feature reads, passed as one.
#[derive(Clone, Copy)]
pub struct Frozen<'a> {
    pub clip: &'a Clip,
    pub cache: &'a FeatureCache,
    pub digest: &'a str,
}

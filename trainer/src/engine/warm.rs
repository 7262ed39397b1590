//! The frozen features every cell of a dataset reads, computed once up front: the test images
//! of each evaluated class subset and the zero-shot text features of its class names. A grid
//! runs this as its own cell before the dataset's cells, so ranks do not encode the same test
//! set side by side; the cells then find everything in the shared cache.
use super::error::RunError;
use super::inputs::{weights_digest, CellData, DataMemo, Identity};
use super::spec::RunSpec;
use crate::cache::{FeatureCache, Outcome};
use crate::clip::Clip;
use crate::features::{split_features, SplitKey};
use crate::methods::zeroshot::cached_text_features;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::Device;

/// What one class subset's features came to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WarmedSet {
    pub subset: crate::data::SubsampleClasses,
    pub images: usize,
    pub classes: usize,
    /// Whether the image features were already in the cache.
    pub cached: bool,
    /// The image features' cache entry.
    pub entry: String,
}

/// The record a feature cell leaves (`features.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeaturesResult {
    pub spec: RunSpec,
    pub spec_hash: String,
    /// The weights and test items encoded.
    pub identity: Option<Identity>,
    pub sets: Vec<WarmedSet>,
    pub seconds: f64,
}

/// Encodes (or finds cached) the test features `spec`'s dataset, weights, precision and
/// evaluated subsets call for, under the same keys `run` looks up.
pub fn encode_test_features(spec: &RunSpec, device: Device) -> Result<FeaturesResult, RunError> {
    super::group::guarded(|| encode(spec, device))
}

fn encode(spec: &RunSpec, device: Device) -> Result<FeaturesResult, RunError> {
    let start = Instant::now();
    let dataset = spec.dataset;
    let data = CellData::load(spec, &mut DataMemo::default())?;
    let digest = weights_digest(spec)?;
    let identity = Identity::of(spec, &data, &digest)?;
    let sets = data.eval_sets;
    let cache = FeatureCache::new(&spec.cache_dir);
    let clip = Clip::load(&spec.weights, spec.precision, device)?;
    crate::threads::apply(&clip);
    let template = [dataset.info().template.to_string()];
    let mut warmed = Vec::new();
    for set in &sets {
        let key = SplitKey::new(
            &digest,
            &clip,
            dataset.id(),
            &format!("test-{}", set.name),
            &set.digest,
        );
        let (_, _, outcome) = split_features(&clip, &key, &set.items, &cache, 100)?;
        let frozen = crate::features::Frozen {
            clip: &clip,
            cache: &cache,
            digest: &digest,
        };
        let _text = cached_text_features(frozen, &set.classnames, &template)?;
        warmed.push(WarmedSet {
            subset: set.name,
            images: set.items.len(),
            classes: set.classnames.len(),
            cached: outcome == Outcome::Hit,
            entry: cache.entry_name("image", &key),
        });
    }
    Ok(FeaturesResult {
        spec: spec.clone(),
        spec_hash: spec.hash(),
        identity: Some(identity),
        sets: warmed,
        seconds: start.elapsed().as_secs_f64(),
    })
}

//! What a cell leaves: `RunResult` (its `result.json`) and the parts it is made of.
use super::spec::RunSpec;
use crate::data::SubsampleClasses;
use crate::methods::subspace::SubspaceSummary;
use crate::store::Identity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    /// 1-based epoch just finished.
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Test accuracy per evaluated class subset (only on evaluation epochs).
    pub test: BTreeMap<SubsampleClasses, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub spec: RunSpec,
    pub spec_hash: String,
    /// What the numbers are a function of; results without one (older versions) are redone.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// Test accuracy (%) per evaluated subset: `all`, `base`, `new`.
    pub accuracy: BTreeMap<SubsampleClasses, f64>,
    /// Harmonic mean of base and new accuracy when both were evaluated.
    pub hm: Option<f64>,
    pub per_class_accuracy: BTreeMap<SubsampleClasses, Vec<Option<f64>>>,
    pub test_size: BTreeMap<SubsampleClasses, usize>,
    pub train_size: usize,
    /// Training images this cell encoded with the image tower, and those whose features it
    /// took from another cell's identical views (see `views`).
    #[serde(default)]
    pub train_views: TrainViews,
    /// libtorch intra-op threads the cell ran with (see `threads`).
    #[serde(default)]
    pub threads: usize,
    /// Training images per class (label order): fewer than `shots` where a class has fewer.
    #[serde(default)]
    pub train_per_class: Vec<usize>,
    pub curves: Vec<CurvePoint>,
    pub subspace: Option<SubspaceSummary>,
    pub fewshot_source: String,
    pub timings: BTreeMap<String, f64>,
    pub versions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrainViews {
    pub encoded: u64,
    pub reused: u64,
}

impl RunResult {
    /// A result of `spec` with nothing measured yet, for synthetic results (tests, examples).
    pub fn new(spec: RunSpec) -> Self {
        RunResult {
            spec_hash: spec.hash(),
            identity: None,
            spec,
            accuracy: BTreeMap::new(),
            hm: None,
            per_class_accuracy: BTreeMap::new(),
            test_size: BTreeMap::new(),
            train_size: 0,
            train_views: TrainViews::default(),
            threads: 1,
            train_per_class: Vec::new(),
            curves: Vec::new(),
            subspace: None,
            fewshot_source: String::new(),
            timings: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }
}

/// Harmonic mean of two accuracies (0 when both are 0).
pub fn harmonic_mean(base: f64, new: f64) -> f64 {
    if base + new == 0.0 {
        0.0
    } else {
        2.0 * base * new / (base + new)
    }
}

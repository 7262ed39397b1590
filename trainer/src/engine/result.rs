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
    /// SHA-256 of each file the cell wrote beside this record (`trajectory.safetensors`,
    /// `context.safetensors`), checked whenever the result is asked whether it is done.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
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
            outputs: BTreeMap::new(),
        }
    }

    /// Reads a `result.json` and accepts it only as a result anything may count: it parses as
    /// this version's record, its spec hashes to the recorded hash (a hand-edited spec would be
    /// reported under settings it was not run with), and every accuracy is a percentage. The
    /// done-check and the report both read results through this, so a result counts
    /// everywhere or nowhere.
    pub fn read_valid(path: &std::path::Path) -> Result<RunResult, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let result: RunResult =
            serde_json::from_str(&text).map_err(|e| format!("not a run result: {e}"))?;
        let hash = result.spec.hash();
        if result.spec_hash != hash && result.spec_hash != result.spec.legacy_hash() {
            return Err(format!(
                "spec_hash {} does not match the spec (hash {hash})",
                result.spec_hash
            ));
        }
        let percent = |a: f64| a.is_finite() && (0.0..=100.0).contains(&a);
        let curves = result.curves.iter().flat_map(|c| c.test.values());
        if let Some(bad) = result
            .accuracy
            .values()
            .chain(curves)
            .find(|a| !percent(**a))
        {
            return Err(format!("accuracy {bad} is not a percentage"));
        }
        if result.hm.is_some_and(|h| !percent(h)) {
            return Err(format!("hm {:?} is not a percentage", result.hm));
        }
        Ok(result)
    }

    /// Whether `dir` holds a finished result of identity `expected` whose written files are
    /// still the bytes it recorded; `Err` says why not.
    pub fn check_done(dir: &crate::store::CellDir, expected: &Identity) -> Result<Self, String> {
        let r = Self::read_valid(&dir.file(crate::store::RESULT))?;
        if r.identity.as_ref() != Some(expected) {
            return Err("made from other inputs or settings than the cell's now".into());
        }
        for (name, recorded) in &r.outputs {
            let path = dir.file(name);
            match crate::digest::file_digest(&path) {
                Ok(d) if &d == recorded => {}
                Ok(_) => return Err(format!("{} changed since it was written", path.display())),
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(r)
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

//! What a cell reads, and the identity of its result: the resolved spec (less the paths that do
//! not change numbers), a version of the numerics, and content digests of the weights, of every
//! item list it trains or tests on and of the trained files it loads. A stored result counts
//! as done only while the identity the cell would have now equals the one it recorded, so a
//! replaced weights file, a cut test split or a retrained source context redoes the cell.
use super::error::RunError;
use super::eval::EvalSet;
use super::spec::RunSpec;
use crate::data::fewshot_cache::{load_or_draw_fewshot, CacheMode};
use crate::data::fewshot_pickle::DasslPickle;
use crate::data::{
    read_dataset, subsample_classes, DatasetName, DatasetSplits, Item, SubsampleClasses,
};
use crate::digest::{file_digest, items_digest};
use crate::io::AtPath;
pub use crate::store::Identity;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bumped whenever a change to the code changes the numbers a spec produces on the same
/// inputs, so results of the older code are redone rather than mixed with new ones.
pub const NUMERICS_VERSION: u32 = 2;

/// Whether a spec trains (rather than only evaluates).
pub fn trains(spec: &RunSpec) -> bool {
    spec.trains()
}

/// The data one cell reads.
pub struct CellData {
    /// The full lists with the few-shot subset in place of train (and val).
    pub drawn: Arc<DatasetSplits>,
    /// `drawn` restricted to the trained class subset.
    pub train_split: DatasetSplits,
    pub eval_sets: Vec<EvalSet>,
    /// Content digest of `train_split.train` when the cell trains (see `digest::items_digest`).
    pub train_digest: Option<String>,
    /// Where the few-shot subset came from.
    pub source: String,
}

/// A few-shot draw in place, and where it came from.
type Drawn = (Arc<DatasetSplits>, String);

/// Which item list of a dataset: the trained subset of a draw (shots, seed, classes), or the
/// test items of a class subset (the same for every draw).
type ListKey = (DatasetName, PathBuf, Option<(usize, u64)>, SubsampleClasses);

/// Parsed splits, few-shot subsets and the content digests of item lists, shared by the cells
/// of one pass over a grid (a grid's 45 ImageNet cells read one 50,000-image test list).
#[derive(Default)]
pub struct DataMemo {
    splits: HashMap<(DatasetName, PathBuf), Arc<DatasetSplits>>,
    drawn: HashMap<(DatasetName, PathBuf, usize, u64), Drawn>,
    lists: HashMap<ListKey, String>,
}

impl DataMemo {
    fn splits(&mut self, d: DatasetName, root: &Path) -> Result<Arc<DatasetSplits>, RunError> {
        let key = (d, root.to_path_buf());
        if let Some(s) = self.splits.get(&key) {
            return Ok(s.clone());
        }
        let s = Arc::new(read_dataset(d, root)?);
        self.splits.insert(key, s.clone());
        Ok(s)
    }

    fn list_digest(&mut self, key: ListKey, items: &[Item]) -> Result<String, RunError> {
        if let Some(d) = self.lists.get(&key) {
            return Ok(d.clone());
        }
        let d = items_digest(items)?;
        self.lists.insert(key, d.clone());
        Ok(d)
    }

    fn drawn(&mut self, spec: &RunSpec) -> Result<Drawn, RunError> {
        let d = spec.dataset;
        let full = self.splits(d, &spec.root)?;
        // Evaluation-only cells (and test-only datasets) draw no subset.
        if !trains(spec) || d.info().test_only {
            return Ok((full, "none (evaluation only)".into()));
        }
        let key = (d, spec.root.clone(), spec.shots, spec.seed);
        if let Some(v) = self.drawn.get(&key) {
            return Ok(v.clone());
        }
        let (fewshot, source) = load_or_draw_fewshot(
            d,
            &spec.root,
            &full,
            spec.shots,
            spec.seed,
            CacheMode::Read,
            Some(&DasslPickle),
        )?;
        let drawn = DatasetSplits {
            train: fewshot.train,
            val: fewshot.val.unwrap_or_default(),
            test: full.test.clone(),
            classnames: full.classnames.clone(),
        };
        let v = (Arc::new(drawn), format!("{source:?}"));
        self.drawn.insert(key, v.clone());
        Ok(v)
    }
}

impl CellData {
    pub fn load(spec: &RunSpec, memo: &mut DataMemo) -> Result<Self, RunError> {
        let (drawn, source) = memo.drawn(spec)?;
        let train_split = subsample_classes(&drawn, spec.subsample);
        // One class makes every prediction right: no accuracy to report.
        let few = |what: String, n: usize| {
            RunError::Spec(format!(
                "{}: {what} has {n} class(es); a classifier needs at least 2",
                spec.dataset
            ))
        };
        if trains(spec) && train_split.classnames.len() < 2 {
            return Err(few(
                format!("the trained subset `{}`", spec.subsample),
                train_split.classnames.len(),
            ));
        }
        let (d, root) = (spec.dataset, spec.root.clone());
        let eval_sets = spec
            .eval_subsets
            .iter()
            .map(|&name| {
                let sub = subsample_classes(&drawn, name);
                Ok(EvalSet {
                    name,
                    classnames: sub.classnames,
                    digest: memo.list_digest((d, root.clone(), None, name), &sub.test)?,
                    items: sub.test,
                })
            })
            .collect::<Result<Vec<EvalSet>, RunError>>()?;
        let train_digest = match trains(spec) {
            true => Some(memo.list_digest(
                (d, root, Some((spec.shots, spec.seed)), spec.subsample),
                &train_split.train,
            )?),
            false => None,
        };
        if let Some(set) = eval_sets.iter().find(|s| s.classnames.len() < 2) {
            return Err(few(
                format!("the evaluated subset `{}`", set.name),
                set.classnames.len(),
            ));
        }
        if let Some(set) = eval_sets.iter().find(|s| s.items.is_empty()) {
            return Err(RunError::Spec(format!(
                "{}: the evaluated subset `{}` has no test images",
                spec.dataset, set.name
            )));
        }
        Ok(CellData {
            drawn,
            train_split,
            eval_sets,
            train_digest,
            source,
        })
    }
}

fn digest_of(path: &Path) -> Result<String, RunError> {
    Ok(file_digest(path).at(path)?)
}

/// The trained files `spec` loads, by role.
fn trained_files(spec: &RunSpec) -> Vec<(&'static str, &Path)> {
    let mut out = Vec::new();
    if spec.method.uses_subspace() && spec.evaluate_context.is_none() {
        if let Some(t) = spec.subpt.as_ref().and_then(|s| s.trajectory.as_deref()) {
            out.push(("trajectory", t));
        }
    }
    if spec.method.learns() {
        if let Some(c) = spec.evaluate_context.as_deref() {
            out.push(("context", c));
        }
    }
    out
}

impl Identity {
    /// The identity of a run of `spec` on `data` with weights of digest `weights`.
    pub fn of(spec: &RunSpec, data: &CellData, weights: &str) -> Result<Self, RunError> {
        let mut items = BTreeMap::new();
        if let Some(d) = &data.train_digest {
            items.insert("train".into(), d.clone());
        }
        for set in &data.eval_sets {
            items.insert(format!("test:{}", set.name), set.digest.clone());
        }
        let files = trained_files(spec)
            .into_iter()
            .map(|(role, p)| Ok((role.to_string(), digest_of(p)?)))
            .collect::<Result<_, RunError>>()?;
        Ok(Identity {
            spec: spec.hash(),
            numerics: NUMERICS_VERSION,
            weights: weights.to_string(),
            items,
            files,
        })
    }

    /// The identity a run of `spec` would have now. Fails where an input is missing (a
    /// trajectory not trained yet): then no stored result can match.
    pub fn expected(spec: &RunSpec, memo: &mut DataMemo) -> Result<Self, RunError> {
        let data = CellData::load(spec, memo)?;
        Identity::of(spec, &data, &digest_of(&spec.weights)?)
    }

    /// The weights' SHA-256 (for labels), as recorded.
    pub fn weights_short(&self) -> &str {
        &self.weights[..self.weights.len().min(8)]
    }
}

/// The weights file's digest (read once per process; see `digest`).
pub fn weights_digest(spec: &RunSpec) -> Result<String, RunError> {
    digest_of(&spec.weights)
}

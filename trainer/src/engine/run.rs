//! `RunSpec -> RunResult`: one cell, from data to accuracy. The launcher calls [`run`]; so does
//! `subpt-bench train`.
use super::error::RunError;
use super::eval::{evaluate, Classifier, EvalSet, Frozen};
use super::inputs::{weights_digest, CellData, DataMemo, Identity};
use super::result::{harmonic_mean, RunResult, TrainViews};
use super::spec::{Method, RunSpec};
use crate::cache::FeatureCache;
use crate::clip::tokenizer::Tokenizer;
use crate::clip::Clip;
use crate::comm::Communicator;
use crate::data::SubsampleClasses;
use crate::io::AtPath;
use crate::methods::cocoop::{CoCoOp, CoCoOpConfig};
use crate::methods::learner::Learner;
use crate::methods::prompt_learner::PromptLearner;
use crate::methods::zeroshot::cached_text_features;
use crate::methods::{TrainCx, Trained};
use crate::store::CellDir;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tch::{Device, Tensor};

/// Runs one cell. `out_dir` receives the learned context (and the trajectory for SubPT stages).
/// Every rank of a data-parallel group `comm` calls this; they succeed or fail together. Rank 0
/// evaluates and returns the cell's result; the others' results carry no accuracies.
pub fn run(
    spec: &RunSpec,
    out_dir: &Path,
    device: Device,
    comm: &dyn Communicator,
) -> Result<RunResult, RunError> {
    super::group::in_step(comm, || run_on_rank(spec, out_dir, device, comm))
}

fn run_on_rank(
    spec: &RunSpec,
    out_dir: &Path,
    device: Device,
    comm: &dyn Communicator,
) -> Result<RunResult, RunError> {
    let t_start = Instant::now();
    let views_before = crate::views::counts();
    let store = CellDir::new(out_dir);
    store.create().at(out_dir)?;
    refuse(spec)?;
    let data = CellData::load(spec, &mut DataMemo::default())?;
    let digest = weights_digest(spec)?;
    // The identity records the trained files as they were read (before training starts).
    let identity = Identity::of(spec, &data, &digest)?;
    let CellData {
        drawn,
        train_split,
        eval_sets,
        source,
        ..
    } = data;
    let cache = FeatureCache::new(&spec.cache_dir);
    let clip = Clip::load(&spec.weights, spec.precision, device)?;
    let threads = crate::threads::apply(&clip);
    let tok = Tokenizer::new();
    let frozen = Frozen {
        clip: &clip,
        cache: &cache,
        digest: &digest,
    };
    let mut timings = BTreeMap::new();
    let t_train = Instant::now();
    let trained = match spec.evaluate_context.as_deref() {
        // A context trained elsewhere (zero-shot CLIP has none to load).
        Some(path) if spec.method.learns() => Trained {
            learner: Some(load_context(&clip, &tok, &eval_sets, spec, path)?),
            ..Trained::default()
        },
        _ => {
            let cx = TrainCx {
                spec,
                frozen,
                tok: &tok,
                drawn: &drawn,
                train_split: &train_split,
                eval_sets: &eval_sets,
                comm,
                store: &store,
            };
            spec.method.def().train(&cx)?
        }
    };
    timings.insert("train_s".into(), t_train.elapsed().as_secs_f64());
    let t_eval = Instant::now();
    // Only rank 0's result is kept: the group's other ranks need not evaluate.
    let evaluated = if comm.rank() == 0 {
        &eval_sets[..]
    } else {
        &[]
    };
    let tested = test(spec, frozen, trained.learner.as_deref(), evaluated)?;
    timings.insert("eval_s".into(), t_eval.elapsed().as_secs_f64());
    timings.insert("total_s".into(), t_start.elapsed().as_secs_f64());
    let train_per_class = per_class_counts(spec, &train_split);
    let views_after = crate::views::counts();
    let train_views = TrainViews {
        encoded: views_after.0 - views_before.0,
        reused: views_after.1 - views_before.1,
    };
    let mut versions = BTreeMap::new();
    versions.insert("subpt-bench".into(), env!("CARGO_PKG_VERSION").to_string());
    versions.insert("device".into(), format!("{device:?}"));
    Ok(RunResult {
        spec: spec.clone(),
        spec_hash: spec.hash(),
        identity: Some(identity),
        hm: tested.hm(),
        accuracy: tested.accuracy,
        per_class_accuracy: tested.per_class,
        test_size: tested.test_size,
        train_size: train_split.train.len(),
        threads,
        train_views,
        train_per_class,
        curves: trained.curves,
        subspace: trained.subspace,
        fewshot_source: source,
        timings,
        versions,
        outputs: trained.outputs,
    })
}

/// Settings the cell cannot make a result of, before it reads anything.
fn refuse(spec: &RunSpec) -> Result<(), RunError> {
    if spec.dataset.info().test_only && spec.trains() {
        return Err(RunError::Spec(format!(
            "{} is test-only: evaluate a trained context on it (evaluate_context) instead of training",
            spec.dataset
        )));
    }
    match spec.problems().into_iter().next() {
        Some(p) => Err(RunError::Spec(format!("{}: {}", p.key, p.message))),
        None => Ok(()),
    }
}

/// Test accuracy per evaluated subset.
#[derive(Default)]
struct Tested {
    accuracy: BTreeMap<SubsampleClasses, f64>,
    per_class: BTreeMap<SubsampleClasses, Vec<Option<f64>>>,
    test_size: BTreeMap<SubsampleClasses, usize>,
}

impl Tested {
    /// The harmonic mean of base and new accuracy, where both were tested.
    fn hm(&self) -> Option<f64> {
        match (
            self.accuracy.get(&SubsampleClasses::Base),
            self.accuracy.get(&SubsampleClasses::New),
        ) {
            (Some(&b), Some(&n)) => Some(harmonic_mean(b, n)),
            _ => None,
        }
    }
}

/// Tests `learner` (zero-shot CLIP with the dataset's template when there is none) on `sets`.
fn test(
    spec: &RunSpec,
    f: Frozen,
    learner: Option<&dyn Learner>,
    sets: &[EvalSet],
) -> Result<Tested, RunError> {
    let mut out = Tested::default();
    for set in sets {
        let classifier = match learner {
            None => {
                let templates = [spec.dataset.info().template.to_string()];
                Classifier::Text(cached_text_features(f, &set.classnames, &templates)?)
            }
            Some(l) => l.classifier(f.clip, set)?,
        };
        let r = evaluate(f, spec, set, &classifier)?;
        out.accuracy.insert(set.name, r.accuracy);
        out.per_class.insert(set.name, r.per_class);
        out.test_size.insert(set.name, set.items.len());
    }
    Ok(out)
}

/// Training images per class, saying so where a class has fewer than the shots asked for.
fn per_class_counts(spec: &RunSpec, train_split: &crate::data::DatasetSplits) -> Vec<usize> {
    let mut counts = vec![0; train_split.classnames.len()];
    for it in &train_split.train {
        counts[it.label] += 1;
    }
    let short = counts.iter().filter(|&&n| n < spec.shots).count();
    if short > 0 && spec.trains() {
        tracing::warn!(
            "{}: {short} of {} classes have fewer than {} training images (the fewest: {}); \
             they train on all they have",
            spec.dataset,
            counts.len(),
            spec.shots,
            counts.iter().min().copied().unwrap_or(0)
        );
    }
    counts
}

/// A prompt learner (or CoCoOp model) for the evaluated classes carrying a context (and
/// meta-network) trained elsewhere.
fn load_context(
    clip: &Clip,
    tok: &Tokenizer,
    eval_sets: &[EvalSet],
    spec: &RunSpec,
    path: &Path,
) -> Result<Box<dyn Learner>, RunError> {
    if spec.prompt.class_specific {
        return Err(RunError::Spec(
            "evaluate_context needs a shared context (class-specific contexts are per class)"
                .into(),
        ));
    }
    let named = Tensor::read_safetensors(path)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .at(path)?;
    let names = eval_sets
        .first()
        .map(|s| s.classnames.clone())
        .unwrap_or_default();
    if spec.method == Method::Cocoop {
        let cfg = CoCoOpConfig {
            n_ctx: spec.prompt.n_ctx,
            ctx_init: spec.prompt.ctx_init.clone(),
        };
        let mut model = CoCoOp::new(clip, tok, &names, &cfg)?;
        model
            .load_parameters(&named)
            .map_err(|e| RunError::Spec(format!("{}: {e}", path.display())))?;
        return Ok(Box::new(model));
    }
    let ctx = named
        .into_iter()
        .find(|(k, _)| k == "ctx")
        .ok_or_else(|| RunError::Spec(format!("{}: no tensor `ctx`", path.display())))?
        .1;
    let mut learner = PromptLearner::new(clip, tok, &names, spec.prompt.clone())?;
    learner.set_context(&ctx)?;
    Ok(Box::new(learner))
}

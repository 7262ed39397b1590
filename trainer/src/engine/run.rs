//! `RunSpec -> RunResult`: one cell, from data to accuracy. The launcher calls [`run`]; so does
//! `subpt-bench train`.
use super::error::RunError;
use super::eval::{evaluate, EvalSet};
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
    let dataset = spec.dataset;
    let store = CellDir::new(out_dir);
    store.create().at(out_dir)?;
    if dataset.info().test_only && spec.trains() {
        return Err(RunError::Spec(format!(
            "{} is test-only: evaluate a trained context on it (evaluate_context) instead of training",
            spec.dataset
        )));
    }
    if let Some(p) = spec.problems().into_iter().next() {
        return Err(RunError::Spec(format!("{}: {}", p.key, p.message)));
    }
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
    let mut timings = BTreeMap::new();
    let template = dataset.info().template;
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
                clip: &clip,
                tok: &tok,
                cache: &cache,
                digest: &digest,
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
    let mut accuracy = BTreeMap::new();
    let mut per_class = BTreeMap::new();
    let mut test_size = BTreeMap::new();
    // Only rank 0's result is kept: the group's other ranks need not evaluate.
    let evaluated = if comm.rank() == 0 {
        &eval_sets[..]
    } else {
        &[]
    };
    for set in evaluated {
        let r = match &trained.learner {
            None => {
                let templates = [template.to_string()];
                let text =
                    cached_text_features(&cache, &clip, &digest, &set.classnames, &templates)?;
                evaluate(&clip, &cache, &digest, spec, set, &text)?
            }
            Some(l) => l.evaluate(&clip, &cache, &digest, spec, set)?,
        };
        accuracy.insert(set.name, r.accuracy);
        per_class.insert(set.name, r.per_class);
        test_size.insert(set.name, set.items.len());
    }
    timings.insert("eval_s".into(), t_eval.elapsed().as_secs_f64());
    timings.insert("total_s".into(), t_start.elapsed().as_secs_f64());
    let hm = match (
        accuracy.get(&SubsampleClasses::Base),
        accuracy.get(&SubsampleClasses::New),
    ) {
        (Some(&b), Some(&n)) => Some(harmonic_mean(b, n)),
        _ => None,
    };
    let mut train_per_class = vec![0; train_split.classnames.len()];
    for it in &train_split.train {
        train_per_class[it.label] += 1;
    }
    let short = train_per_class.iter().filter(|&&n| n < spec.shots).count();
    if short > 0 && spec.trains() {
        tracing::warn!(
            "{}: {short} of {} classes have fewer than {} training images (the fewest: {}); \
             they train on all they have",
            spec.dataset,
            train_per_class.len(),
            spec.shots,
            train_per_class.iter().min().copied().unwrap_or(0)
        );
    }
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
        accuracy,
        hm,
        per_class_accuracy: per_class,
        test_size,
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

//! `RunSpec -> RunResult`: one cell, from data to accuracy. The launcher calls [`run`]; so does
//! `subpt-bench train`.
use super::artefacts::{load_trajectory, save_context};
use super::error::RunError;
use super::eval::{evaluate, EvalSet};
use super::inputs::{weights_digest, CellData, DataMemo, Identity};
use super::learner::Learner;
use super::result::{harmonic_mean, RunResult, TrainViews};
use super::spec::{Method, RunSpec, SubptInit};
use super::train::{train, TrainSetup};
use crate::cache::FeatureCache;
use crate::clip::tokenizer::Tokenizer;
use crate::clip::Clip;
use crate::comm::Communicator;
use crate::data::{subsample_classes, DatasetName, SubsampleClasses};
use crate::io::AtPath;
use crate::methods::cocoop::{CoCoOp, CoCoOpConfig};
use crate::methods::nfl::{name_list, Nfl};
use crate::methods::prompt_learner::{PromptLearner, PromptSet};
use crate::methods::subspace::Subspace;
use crate::methods::zeroshot::{cached_text_features, ensemble_templates};
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
    if dataset.info().test_only && spec.method != Method::Zsclip && spec.evaluate_context.is_none()
    {
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
    let mut curves = Vec::new();
    let mut subspace_summary = None;
    let mut outputs = BTreeMap::new();
    let template = dataset.info().template;
    let t_train = Instant::now();
    let trained: Option<Box<dyn Learner>> = match spec.method {
        _ if spec.evaluate_context.is_some() && spec.method != Method::Zsclip => {
            let path = spec.evaluate_context.as_deref().expect("checked");
            Some(load_context(&clip, &tok, &eval_sets, spec, path)?)
        }
        // Zero-shot CLIP learns nothing.
        Method::Zsclip => None,
        Method::Cocoop => {
            tch::manual_seed(spec.seed as i64);
            let cfg = CoCoOpConfig {
                n_ctx: spec.prompt.n_ctx,
                ctx_init: spec.prompt.ctx_init.clone(),
            };
            let mut model = CoCoOp::new(&clip, &tok, &train_split.classnames, &cfg)?;
            let theta0 = model.learner.ctx.detach().copy();
            let setup = TrainSetup {
                spec,
                clip: &clip,
                items: &train_split.train,
                nfl: None,
                eval_sets: &eval_sets,
                cache: &cache,
                weights_digest: &digest,
                comm,
            };
            let trajectory = train(&setup, &mut model, spec.epochs, None, &mut curves)?;
            if comm.rank() == 0 {
                // The meta-network travels with the context, so the model can be evaluated
                // on other datasets (domain generalisation).
                let meta = model.named_parameters().split_off(1);
                outputs = save_context(&store, &theta0, &trajectory, &meta)?;
            }
            Some(Box::new(model) as Box<dyn Learner>)
        }
        _ => {
            tch::manual_seed(spec.seed as i64);
            let mut learner =
                PromptLearner::new(&clip, &tok, &train_split.classnames, spec.prompt.clone())?;
            let theta0 = learner.ctx.detach().copy();
            let nfl = match &spec.nfl {
                Some(n) if spec.method.uses_nfl() => {
                    let novel = subsample_classes(&drawn, SubsampleClasses::New).classnames;
                    Some(build_nfl(
                        &clip, &tok, &cache, &digest, &learner, n, dataset, &novel,
                    )?)
                }
                _ => None,
            };
            let setup = TrainSetup {
                spec,
                clip: &clip,
                items: &train_split.train,
                nfl: nfl.as_ref(),
                eval_sets: &eval_sets,
                cache: &cache,
                weights_digest: &digest,
                comm,
            };
            let projector = match spec.subpt.as_ref().filter(|_| spec.method.uses_subspace()) {
                Some(sub) => {
                    let trajectory = match &sub.trajectory {
                        Some(p) => load_trajectory(p, sub.early_epochs)?,
                        None => {
                            // The early stage of the source method, with the same seed and θ0.
                            let early = train(
                                &setup,
                                &mut learner,
                                sub.early_epochs,
                                None,
                                &mut Vec::new(),
                            )?;
                            learner.set_context(&theta0)?;
                            early
                        }
                    };
                    let s = Subspace::fit(&trajectory, sub.rank)?;
                    subspace_summary = Some(s.summary(trajectory.len()));
                    if sub.init == SubptInit::Epoch1 {
                        learner.set_context(&trajectory[0])?;
                    }
                    Some(s.projector(clip.device))
                }
                None => None,
            };
            let trajectory = train(
                &setup,
                &mut learner,
                spec.epochs,
                projector.as_ref(),
                &mut curves,
            )?;
            if comm.rank() == 0 {
                outputs = save_context(&store, &theta0, &trajectory, &[])?;
            }
            Some(Box::new(learner) as Box<dyn Learner>)
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
        let r = match &trained {
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
    if short > 0 && spec.evaluate_context.is_none() && spec.method != Method::Zsclip {
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
        curves,
        subspace: subspace_summary,
        fewshot_source: source,
        timings,
        versions,
        outputs,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_nfl(
    clip: &Clip,
    tok: &Tokenizer,
    cache: &FeatureCache,
    digest: &str,
    learner: &PromptLearner,
    n: &super::spec::NflSpec,
    dataset: DatasetName,
    novel: &[String],
) -> Result<Nfl, RunError> {
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
    let targets = cached_text_features(cache, clip, digest, &names, &ensemble_templates(own))?;
    Ok(Nfl {
        prompts: PromptSet::new(
            clip,
            tok,
            &names,
            &learner.ctx_words,
            learner.config.effective_n_ctx(),
        )?,
        targets,
        lambda: n.lambda,
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

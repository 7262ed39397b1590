//! `RunSpec -> RunResult`: one cell, from data to accuracy. The launcher calls [`run`]; so does
//! `subpt-bench train`.
use super::eval::{evaluate, EvalSet};
use super::inputs::{subsample, weights_digest, CellData, DataMemo, Identity};
use super::spec::{Method, RunSpec, SubptInit};
use super::train::{train, Model, TrainSetup};
use crate::cache::FeatureCache;
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{Clip, ClipError};
use crate::comm::Communicator;
use crate::data::{DataError, DatasetName};
use crate::methods::cocoop::{CoCoOp, CoCoOpConfig};
use crate::methods::nfl::{name_list, Nfl};
use crate::methods::prompt_learner::{PromptLearner, PromptSet};
use crate::methods::subspace::{Subspace, SubspaceSummary};
use crate::methods::zeroshot::{cached_text_features, ensemble_templates};
use crate::store::CellDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("spec: {0}")]
    Spec(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Clip(#[from] ClipError),
    #[error(transparent)]
    Features(#[from] crate::features::FeatureError),
    #[error(transparent)]
    Load(#[from] crate::data::loader::LoadError),
    #[error(transparent)]
    Transform(#[from] crate::data::transforms::TransformError),
    #[error(transparent)]
    Subspace(#[from] crate::methods::subspace::SubspaceError),
    #[error(transparent)]
    Comm(#[from] crate::comm::CommError),
    #[error("training diverged at epoch {epoch}, batch {batch}: {what} is not finite")]
    NonFinite {
        epoch: usize,
        batch: usize,
        what: &'static str,
    },
    /// A panic inside libtorch or our code, caught so one cell cannot take down a grid.
    #[error("internal error: {0}")]
    Panic(String),
    #[error("{failures} other rank(s) of the data-parallel group failed at the same step")]
    PeerFailed { failures: usize },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurvePoint {
    /// 1-based epoch just finished.
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Test accuracy per evaluated class subset (only on evaluation epochs).
    pub test: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub spec: RunSpec,
    pub spec_hash: String,
    /// What the numbers are a function of; results without one (older versions) are redone.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// Test accuracy (%) per evaluated subset: `all`, `base`, `new`.
    pub accuracy: BTreeMap<String, f64>,
    /// Harmonic mean of base and new accuracy when both were evaluated.
    pub hm: Option<f64>,
    pub per_class_accuracy: BTreeMap<String, Vec<Option<f64>>>,
    pub test_size: BTreeMap<String, usize>,
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

/// Harmonic mean of two accuracies (0 when both are 0).
pub fn harmonic_mean(base: f64, new: f64) -> f64 {
    if base + new == 0.0 {
        0.0
    } else {
        2.0 * base * new / (base + new)
    }
}

/// What a cell ends with, for evaluation.
enum Trained {
    ZeroShot,
    Prompts(Box<PromptLearner>),
    CoCoOp(Box<CoCoOp>),
}

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
    let dataset: DatasetName = spec.dataset.parse()?;
    let store = CellDir::new(out_dir);
    store.create().map_err(|source| RunError::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    if dataset.info().test_only && spec.method != Method::Zsclip && spec.evaluate_context.is_none()
    {
        return Err(RunError::Spec(format!(
            "{} is test-only: evaluate a trained context on it (evaluate_context) instead of training",
            spec.dataset
        )));
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
    let template = dataset.info().template;
    let t_train = Instant::now();
    let mut trained = match spec.method {
        _ if spec.evaluate_context.is_some() && spec.method != Method::Zsclip => {
            let path = spec.evaluate_context.as_deref().expect("checked");
            load_context(&clip, &tok, &eval_sets, spec, path)?
        }
        Method::Zsclip => Trained::ZeroShot,
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
            let trajectory = train(
                &setup,
                &mut Model::CoCoOp(&mut model),
                spec.epochs,
                None,
                &mut curves,
            )?;
            if comm.rank() == 0 {
                // The meta-network travels with the context, so the model can be evaluated
                // on other datasets (domain generalisation).
                let meta = model.named_parameters().split_off(1);
                save_context(&store, &theta0, &trajectory, &meta)?;
            }
            Trained::CoCoOp(Box::new(model))
        }
        _ => {
            tch::manual_seed(spec.seed as i64);
            let mut learner =
                PromptLearner::new(&clip, &tok, &train_split.classnames, spec.prompt.clone())?;
            let theta0 = learner.ctx.detach().copy();
            let nfl = match &spec.nfl {
                Some(n) if spec.method.uses_nfl() => {
                    let novel = subsample(&drawn, "new")?.classnames;
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
                                &mut Model::Prompts(&mut learner),
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
                &mut Model::Prompts(&mut learner),
                spec.epochs,
                projector.as_ref(),
                &mut curves,
            )?;
            if comm.rank() == 0 {
                save_context(&store, &theta0, &trajectory, &[])?;
            }
            Trained::Prompts(Box::new(learner))
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
        let r = match &mut trained {
            Trained::ZeroShot => {
                let templates = [template.to_string()];
                let text =
                    cached_text_features(&cache, &clip, &digest, &set.classnames, &templates)?;
                evaluate(&clip, &cache, &digest, spec, set, &text)?
            }
            Trained::Prompts(l) => Model::Prompts(l).evaluate(&clip, &cache, &digest, spec, set)?,
            Trained::CoCoOp(c) => Model::CoCoOp(c).evaluate(&clip, &cache, &digest, spec, set)?,
        };
        accuracy.insert(set.name.clone(), r.accuracy);
        per_class.insert(set.name.clone(), r.per_class);
        test_size.insert(set.name.clone(), set.items.len());
    }
    timings.insert("eval_s".into(), t_eval.elapsed().as_secs_f64());
    timings.insert("total_s".into(), t_start.elapsed().as_secs_f64());
    let hm = match (accuracy.get("base"), accuracy.get("new")) {
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
        None => std::fs::read_to_string(&n.names)
            .map_err(|source| RunError::Io {
                path: n.names.clone(),
                source,
            })?
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
) -> Result<Trained, RunError> {
    if spec.prompt.class_specific {
        return Err(RunError::Spec(
            "evaluate_context needs a shared context (class-specific contexts are per class)"
                .into(),
        ));
    }
    let named = Tensor::read_safetensors(path).map_err(|e| RunError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
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
        return Ok(Trained::CoCoOp(Box::new(model)));
    }
    let ctx = named
        .into_iter()
        .find(|(k, _)| k == "ctx")
        .ok_or_else(|| RunError::Spec(format!("{}: no tensor `ctx`", path.display())))?
        .1;
    let mut learner = PromptLearner::new(clip, tok, &names, spec.prompt.clone())?;
    learner.set_context(&ctx)?;
    Ok(Trained::Prompts(Box::new(learner)))
}

/// The trajectory file holds `ctx_<e>` for e = 1..E (context after epoch e) and `theta0`; the
/// context file the final `ctx` and any other trained tensors (`extra`, by name).
fn save_context(
    store: &CellDir,
    theta0: &Tensor,
    trajectory: &[Tensor],
    extra: &[(String, Tensor)],
) -> Result<(), RunError> {
    let mut named = vec![("theta0".to_string(), theta0.to_device(Device::Cpu))];
    for (e, t) in trajectory.iter().enumerate() {
        named.push((format!("ctx_{}", e + 1), t.to_device(Device::Cpu)));
    }
    let last = trajectory.last().unwrap_or(theta0).to_device(Device::Cpu);
    let write = |p: PathBuf, tensors: &[(String, Tensor)]| -> Result<(), RunError> {
        crate::io::with_atomic_path(&p, |tmp| {
            Tensor::write_safetensors(tensors, tmp)
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .map_err(|source| RunError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    write(store.trajectory(), &named)?;
    let mut context = vec![("ctx".to_string(), last)];
    context.extend(
        extra
            .iter()
            .map(|(k, t)| (k.clone(), t.detach().to_device(Device::Cpu))),
    );
    write(store.context(), &context)
}

/// Reads ctx_1..ctx_n of a stage-A trajectory file.
pub fn load_trajectory(path: &Path, n: usize) -> Result<Vec<Tensor>, RunError> {
    let map: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| RunError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?
        .into_iter()
        .collect();
    (1..=n)
        .map(|e| {
            map.get(&format!("ctx_{e}"))
                .map(|t| t.shallow_clone())
                .ok_or_else(|| {
                    RunError::Spec(format!(
                        "{}: no ctx_{e} (trajectory shorter than {n} epochs)",
                        path.display()
                    ))
                })
        })
        .collect()
}

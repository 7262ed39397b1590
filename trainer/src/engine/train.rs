//! The prompt-training loop shared by CoOp, NFL and their SubPT variants: per-epoch reshuffle,
//! Dassl's batching, train-time augmentation, frozen image tower, optional gradient projection,
//! SGD with the CoOp schedule, and a guard that fails the cell on a non-finite loss or gradient.
use super::eval::{evaluate, EvalSet};
use super::optim::Sgd;
use super::run::{CurvePoint, RunError};
use super::schedule::Schedule;
use super::spec::RunSpec;
use crate::cache::FeatureCache;
use crate::clip::Clip;
use crate::data::loader::{dassl_drop_last, Prefetch};
use crate::data::transforms::{SeededRng, TrainTransform};
use crate::data::{Item, PyRandom};
use crate::methods::coop;
use crate::methods::nfl::Nfl;
use crate::methods::prompt_learner::{PromptLearner, PromptSet};
use crate::methods::subspace::Projector;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tch::Tensor;

pub struct TrainSetup<'a> {
    pub spec: &'a RunSpec,
    pub clip: &'a Clip,
    pub items: &'a [Item],
    pub nfl: Option<&'a Nfl>,
    pub eval_sets: &'a [EvalSet],
    pub cache: &'a FeatureCache,
    pub weights_digest: &'a str,
}

fn finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) == 1
}

/// Trains `learner` for the first `epochs` epochs of the spec's schedule (SubPT's early stage
/// stops early on the same schedule). Returns the context after each epoch.
pub fn train(
    s: &TrainSetup,
    learner: &mut PromptLearner,
    epochs: usize,
    projector: Option<&Projector>,
    curves: &mut Vec<CurvePoint>,
) -> Result<Vec<Tensor>, RunError> {
    let spec = s.spec;
    let schedule = Schedule {
        base_lr: spec.lr,
        max_epoch: spec.epochs,
        warmup_epochs: spec.warmup_epochs,
        warmup_lr: spec.warmup_lr,
    };
    let items: Arc<Vec<(PathBuf, i64)>> = Arc::new(
        s.items
            .iter()
            .map(|i| (i.impath.clone(), i.label as i64))
            .collect(),
    );
    let n = items.len();
    let drop_last = dassl_drop_last(n, spec.batch_size);
    let resolution = s.clip.config.vision.resolution() as usize;
    let mut order_rng = PyRandom::new(spec.seed);
    let mut sgd = Sgd::new(spec.sgd);
    let mut trajectory = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        let lr = schedule.lr(epoch);
        let mut order: Vec<usize> = (0..n).collect();
        order_rng.shuffle(&mut order);
        let aug_seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
        let batches = Prefetch::train(
            items.clone(),
            &order,
            spec.batch_size.min(n),
            drop_last,
            TrainTransform::new(resolution)?,
            move |pos| SeededRng::for_item(aug_seed, pos as u64),
        )?;
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0i64);
        for (b, batch) in batches.enumerate() {
            let batch = batch?;
            let img = tch::no_grad(|| s.clip.encode_image(&batch.images));
            let labels = batch.labels.to_device(s.clip.device);
            let (mut loss, logits) = coop::loss(s.clip, learner, &img, &labels);
            if let Some(nfl) = s.nfl {
                loss += nfl.loss(s.clip, learner);
            }
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(RunError::NonFinite {
                    epoch: epoch + 1,
                    batch: b,
                    what: "loss",
                });
            }
            let grad = Tensor::run_backward(&[&loss], &[&learner.ctx], false, false).remove(0);
            let grad = match projector {
                Some(p) => p.project(&grad),
                None => grad,
            };
            if !finite(&grad) {
                return Err(RunError::NonFinite {
                    epoch: epoch + 1,
                    batch: b,
                    what: "gradient",
                });
            }
            sgd.step(&mut learner.ctx, &grad, lr);
            loss_sum += value * batch.labels.size()[0] as f64;
            correct += coop::correct(&logits.detach(), &labels);
            seen += batch.labels.size()[0];
        }
        trajectory.push(learner.ctx.detach().copy());
        let mut test = BTreeMap::new();
        let evaluate_now = spec.eval_every > 0 && (epoch + 1) % spec.eval_every == 0;
        if evaluate_now {
            for set in s.eval_sets {
                let prompts = PromptSet::new(
                    s.clip,
                    &crate::clip::tokenizer::Tokenizer::new(),
                    &set.classnames,
                    &learner.ctx_words,
                    learner.config.effective_n_ctx(),
                )?;
                let text = tch::no_grad(|| learner.features_for(s.clip, &prompts));
                let r = evaluate(s.clip, s.cache, s.weights_digest, spec, set, &text)?;
                test.insert(set.name.clone(), r.accuracy);
            }
        }
        let seen = seen.max(1) as f64;
        curves.push(CurvePoint {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen,
            train_accuracy: 100.0 * correct as f64 / seen,
            test,
        });
        tracing::info!(
            epoch = epoch + 1,
            lr,
            loss = loss_sum / seen,
            acc = 100.0 * correct as f64 / seen,
            "epoch done"
        );
    }
    Ok(trajectory)
}

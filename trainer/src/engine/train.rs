//! The prompt-training loop shared by CoOp, NFL and their SubPT variants: per-epoch reshuffle,
//! Dassl's batching, train-time augmentation, frozen image tower, optional gradient projection,
//! SGD with the CoOp schedule, and a guard that fails the cell on a non-finite loss or gradient.
use super::error::RunError;
use super::eval::{evaluate, EvalSet, Frozen};
use super::group::checked_sum;
use super::optim::Sgd;
use super::result::CurvePoint;
use super::schedule::Schedule;
use super::spec::RunSpec;
use crate::clip::all_finite;
use crate::comm::{shard, Communicator};
use crate::data::loader::{dassl_drop_last, ordered_batches, Pipeline, Prefetch};
use crate::data::transforms::{Normalize, SeededRng, TestTransform, TrainTransform};
use crate::data::{Item, PyRandom};
use crate::methods::learner::{BatchLoss, GradientRule, Learner, TermGrads, REST};
use crate::views::{ViewKey, Views};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tch::Tensor;

pub struct TrainSetup<'a> {
    pub spec: &'a RunSpec,
    pub frozen: Frozen<'a>,
    pub items: &'a [Item],
    pub eval_sets: &'a [EvalSet],
    /// The data-parallel group training this cell (a group of one without `--dp`).
    pub comm: &'a dyn Communicator,
}

/// Sums every rank's gradients in one all-reduce (after the group's failure check).
pub(crate) fn reduce_over_group(
    comm: &dyn Communicator,
    grads: Vec<Tensor>,
) -> Result<Vec<Tensor>, RunError> {
    let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
    let mut all = Tensor::cat(&flat, 0);
    checked_sum(comm, &mut all)?;
    let mut offset = 0;
    Ok(grads
        .iter()
        .map(|g| {
            let n = g.numel() as i64;
            let part = all.narrow(0, offset, n).view_as(g);
            offset += n;
            part
        })
        .collect())
}

/// Sums every term's gradients over the group in one all-reduce.
fn reduce_terms(comm: &dyn Communicator, grads: TermGrads) -> Result<TermGrads, RunError> {
    let shape: Vec<(&'static str, usize)> = grads.iter().map(|(n, g)| (*n, g.len())).collect();
    let mut flat = reduce_over_group(comm, grads.into_iter().flat_map(|(_, g)| g).collect())?;
    Ok(shape
        .into_iter()
        .map(|(name, n)| (name, flat.drain(..n).collect()))
        .collect())
}

/// The update's gradients: what the rules left, summed term by term.
fn sum_terms(grads: TermGrads) -> Vec<Tensor> {
    let mut terms = grads.into_iter().map(|(_, g)| g);
    let first = terms.next().unwrap_or_default();
    terms.fold(first, |acc, g| {
        acc.iter().zip(&g).map(|(a, b)| a + b).collect()
    })
}

/// Trains `learner` for the first `epochs` epochs of the spec's schedule (SubPT's early stage
/// stops early on the same schedule), applying `rules` in order to each step's gradients.
/// Returns the context after each epoch.
pub fn train(
    s: &TrainSetup,
    model: &mut dyn Learner,
    epochs: usize,
    rules: &[&dyn GradientRule],
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
    let mut order_rng = PyRandom::new(spec.seed);
    let mut sgd: Vec<Sgd> = model
        .params_mut()
        .iter()
        .map(|_| Sgd::new(spec.sgd))
        .collect();
    let mut trajectory = Vec::with_capacity(epochs);
    let views = views_of(s)?;
    let apart: Vec<&'static str> = rules
        .iter()
        .flat_map(|r| r.reads_apart())
        .copied()
        .collect();
    for epoch in 0..epochs {
        let lr = schedule.lr(epoch);
        let mut order: Vec<usize> = (0..items.len()).collect();
        order_rng.shuffle(&mut order);
        let mut e = Epoch::start(s, &items, &views, &order, epoch)?;
        for b in 0..e.global.len() {
            let mut grads = e.local_grads(s, model, b, &apart)?;
            if e.size > 1 {
                grads = reduce_terms(s.comm, grads)?;
            }
            // After the all-reduce: a group's rules see the whole batch's gradients.
            for r in rules {
                r.apply(&mut grads);
            }
            let grads = sum_terms(grads);
            let mut params = model.params_mut();
            if !grads.iter().all(all_finite) {
                return Err(e.non_finite(b, "gradient"));
            }
            for ((param, grad), opt) in params.iter_mut().zip(&grads).zip(&mut sgd) {
                opt.step(param, grad, lr);
            }
        }
        let point = e.finish(s, model, &views, lr)?;
        trajectory.push(model.ctx().detach().copy());
        curves.push(point);
    }
    Ok(trajectory)
}

/// The store of training views this cell shares with the cells that see the same ones.
fn views_of(s: &TrainSetup) -> Result<Views, RunError> {
    let spec = s.spec;
    let resolution = s.frozen.clip.config.vision.resolution() as usize;
    // Data-parallel ranks see shards of each batch: only a group of one shares views.
    let view_key = match s.comm.size() {
        1 => Some(crate::digest::items_digest(s.items)?),
        _ => None,
    };
    let view_key = view_key.map(|items| ViewKey {
        weights: s.frozen.digest.to_string(),
        precision: s.frozen.clip.precision.to_string(),
        items,
        seed: spec.seed,
        batch_size: spec.batch_size,
        transform: format!("{:?} at {resolution}px", spec.augment),
        epoch: 0,
    });
    Ok(Views::new(&spec.cache_dir, view_key))
}

/// One epoch under way: its batches (global, and this rank's shard of each), where its image
/// features come from, and its running loss and accuracy.
struct Epoch {
    index: usize,
    items: Arc<Vec<(PathBuf, i64)>>,
    global: Vec<Vec<usize>>,
    shards: Vec<Vec<usize>>,
    size: usize,
    /// This epoch's features from a cell that saw the same views, if any.
    shared: Option<Tensor>,
    batches: Option<Prefetch>,
    /// This epoch's features, batch by batch, for the cells that see the same views (kept only
    /// while the views store is on).
    encoded: Vec<Tensor>,
    share: bool,
    offset: i64,
    loss_sum: f64,
    correct: i64,
    seen: i64,
}

impl Epoch {
    fn start(
        s: &TrainSetup,
        items: &Arc<Vec<(PathBuf, i64)>>,
        views: &Views,
        order: &[usize],
        epoch: usize,
    ) -> Result<Self, RunError> {
        let spec = s.spec;
        let n = items.len();
        let drop_last = dassl_drop_last(n, spec.batch_size);
        let aug_seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
        // Every rank walks the same global batches and takes its contiguous shard of each.
        let global = ordered_batches(order, spec.batch_size.min(n).max(1), drop_last)?;
        let (rank, size) = (s.comm.rank(), s.comm.size());
        let shards: Vec<Vec<usize>> = global
            .iter()
            .map(|g| g[shard(g.len(), rank, size)].to_vec())
            .collect();
        let loaded: Vec<Vec<usize>> = shards.iter().filter(|v| !v.is_empty()).cloned().collect();
        let rows: usize = loaded.iter().map(Vec::len).sum();
        let shared = views.get(epoch, rows);
        let batches = match shared {
            Some(_) => None,
            None => Some(Prefetch::start(
                items.clone(),
                loaded.clone(),
                pipeline(s, &loaded, aug_seed)?,
            )),
        };
        Ok(Epoch {
            index: epoch,
            items: items.clone(),
            global,
            shards,
            size,
            shared,
            batches,
            encoded: Vec::new(),
            share: views.active(),
            offset: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
        })
    }

    fn non_finite(&self, batch: usize, what: &'static str) -> RunError {
        RunError::NonFinite {
            epoch: self.index + 1,
            batch,
            what,
        }
    }

    /// This rank's gradients of batch `b`: its shard's share of the batch's terms plus its
    /// share of the terms without images, in one backward pass, or one per term in `apart`
    /// (the terms a rule reads apart) and one for the rest. Every rank returns the same
    /// entries, zeros where it has none of a term, so the group's all-reduce lines up.
    fn local_grads(
        &mut self,
        s: &TrainSetup,
        model: &mut dyn Learner,
        b: usize,
        apart: &[&'static str],
    ) -> Result<TermGrads, RunError> {
        let mut terms = Vec::new();
        let mine = self.shards[b].clone();
        if !mine.is_empty() {
            let (img, labels) = self.images(s, &mine)?;
            let labels = labels.to_device(s.frozen.clip.device);
            let BatchLoss {
                terms: batch,
                logits,
            } = model.loss(s.frozen.clip, &img, &labels);
            // Summed over ranks, the shard-weighted means give the global batch mean.
            let share = mine.len() as f64 / self.global[b].len() as f64;
            for (k, (name, term)) in batch.into_iter().enumerate() {
                let value = term.double_value(&[]);
                if !value.is_finite() {
                    return Err(self.non_finite(b, "loss"));
                }
                if k == 0 {
                    // Cross-entropy: what the curves report as the training loss.
                    self.loss_sum += value * mine.len() as f64;
                }
                terms.push((name, term * share));
            }
            self.correct += crate::clip::correct(&logits.detach(), &labels);
            self.seen += mine.len() as i64;
        }
        // Terms without images (NFL's) are the whole group's once: each rank adds its share.
        for (name, term) in model.extra_terms(s.frozen.clip) {
            if !term.double_value(&[]).is_finite() {
                return Err(self.non_finite(b, "loss"));
            }
            terms.push((name, term / self.size as f64));
        }
        let mut groups: Vec<(&'static str, Option<Tensor>)> =
            apart.iter().chain([&REST]).map(|n| (*n, None)).collect();
        for (name, term) in terms {
            let slot = apart.iter().position(|a| *a == name).unwrap_or(apart.len());
            let sum = &mut groups[slot].1;
            *sum = Some(match sum.take() {
                None => term,
                Some(acc) => acc + term,
            });
        }
        let params = model.params_mut();
        let inputs: Vec<&Tensor> = params.iter().map(|p| &**p).collect();
        let last = groups.iter().rposition(|(_, t)| t.is_some());
        Ok(groups
            .into_iter()
            .enumerate()
            .map(|(i, (name, total))| {
                let grads = match total {
                    None => inputs.iter().map(|p| p.zeros_like()).collect(),
                    // Terms read apart share the prompts' graph: keep it for the next one.
                    Some(t) => Tensor::run_backward(&[&t], &inputs, Some(i) != last, false),
                };
                (name, grads)
            })
            .collect())
    }

    /// The image features and labels of this rank's shard `mine`: from the shared views, or
    /// encoded from the loader's next batch.
    fn images(&mut self, s: &TrainSetup, mine: &[usize]) -> Result<(Tensor, Tensor), RunError> {
        let out = match (&self.shared, self.batches.as_mut()) {
            (Some(f), _) => {
                // A fresh tensor, as the tower's output is.
                let img = f.narrow(0, self.offset, mine.len() as i64).copy();
                let l: Vec<i64> = mine.iter().map(|&i| self.items[i].1).collect();
                (img.to_device(s.frozen.clip.device), Tensor::from_slice(&l))
            }
            (None, Some(loader)) => {
                let batch = loader
                    .next()
                    .expect("one loaded batch per non-empty shard")?;
                let raw = tch::no_grad(|| s.frozen.clip.encode_image_raw(&batch.images));
                crate::views::count_encoded(mine.len());
                if self.share {
                    self.encoded.push(raw.shallow_clone());
                }
                (raw.to_kind(tch::Kind::Float), batch.labels)
            }
            (None, None) => unreachable!("a loader runs when nothing is shared"),
        };
        self.offset += mine.len() as i64;
        Ok(out)
    }

    /// Ends the epoch: shares its views, sums the group's statistics, checks the context and
    /// evaluates when due. Returns its curve point.
    fn finish(
        mut self,
        s: &TrainSetup,
        model: &dyn Learner,
        views: &Views,
        lr: f64,
    ) -> Result<CurvePoint, RunError> {
        let (spec, epoch) = (s.spec, self.index);
        if self.shared.is_none() && !self.encoded.is_empty() {
            views.put(epoch, Tensor::cat(&self.encoded, 0));
        }
        if self.size > 1 {
            let mut stats =
                Tensor::from_slice(&[self.loss_sum, self.correct as f64, self.seen as f64])
                    .to_device(s.frozen.clip.device);
            checked_sum(s.comm, &mut stats)?;
            let v = Vec::<f64>::try_from(&stats).expect("3 values");
            (self.loss_sum, self.correct, self.seen) = (v[0], v[1] as i64, v[2] as i64);
        }
        // A finite loss does not prove a finite context (the last step may overflow it).
        if !all_finite(model.ctx()) {
            return Err(self.non_finite(self.global.len().saturating_sub(1), "context"));
        }
        let mut test = BTreeMap::new();
        // Curves are kept from rank 0 only, as is the whole result.
        let evaluate_now =
            spec.eval_every > 0 && (epoch + 1) % spec.eval_every == 0 && s.comm.rank() == 0;
        if evaluate_now {
            for set in s.eval_sets {
                let classifier = model.classifier(s.frozen.clip, set)?;
                let r = evaluate(s.frozen, spec, set, &classifier)?;
                test.insert(set.name, r.accuracy);
            }
        }
        let seen = self.seen.max(1) as f64;
        let (loss, acc) = (self.loss_sum / seen, 100.0 * self.correct as f64 / seen);
        tracing::info!(epoch = epoch + 1, lr, loss, acc, "epoch done");
        Ok(CurvePoint {
            epoch: epoch + 1,
            lr,
            train_loss: loss,
            train_accuracy: acc,
            test,
        })
    }
}

/// The epoch's image pipeline: train-time augmentation keyed by item (so it does not depend on
/// how batches are sharded), or the test transform.
fn pipeline(
    s: &TrainSetup,
    loaded: &[Vec<usize>],
    aug_seed: u64,
) -> Result<Pipeline<impl Fn(usize) -> SeededRng + Send + 'static>, RunError> {
    let resolution = s.frozen.clip.config.vision.resolution() as usize;
    let flat: Arc<Vec<usize>> = Arc::new(loaded.concat());
    let rng_for = move |pos: usize| SeededRng::for_item(aug_seed, flat[pos] as u64);
    let a = s.spec.augment;
    Ok(if a.enabled {
        Pipeline::Train {
            transform: TrainTransform::with_params(
                resolution,
                a.scale,
                (3.0 / 4.0, 4.0 / 3.0),
                a.flip_p,
                Normalize::CLIP,
            )?,
            rng_for,
        }
    } else {
        Pipeline::Test(TestTransform::new(resolution)?)
    })
}

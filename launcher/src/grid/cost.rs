//! Relative cost of a cell, for scheduling and for the dry-run total.
//!
//! The unit is one prompt through the text encoder. Image features are frozen and cached,
//! so a CoOp step costs about one forward + backward (≈ 3 forwards) of the text encoder
//! over the prompts of every training class:
//!
//! - train items   = shots × classes trained on (all classes, or the base half)
//! - steps / epoch = ⌈train items / batch size⌉ (CoCoOp's batch of 1 makes this large)
//! - training      = 3 × epochs × steps × classes, plus the early stage (t_early epochs)
//!   when a SubPT cell has no trajectory to reuse; zero-shot CLIP trains nothing
//! - evaluation    = one pass over the prompts of the classes evaluated
//!
//! A feature cell encodes each evaluated test subset once: an image-tower pass costs about as
//! much as `IMAGE_PASS` text prompts (ViT-B/16: 197 tokens of width 768 against 77 of 512).
//!
//! Class counts and test-set sizes are the real datasets' (`DatasetInfo::num_classes`,
//! `num_test`), so fixtures look dearer than they are; only ratios between cells matter.
use super::CellKind;
use subpt_trainer::data::DatasetName;
use subpt_trainer::engine::spec::{Method, RunSpec};

const IMAGE_PASS: f64 = 7.5;

pub fn estimate_cost(spec: &RunSpec, kind: &CellKind) -> f64 {
    let dataset = spec.dataset.parse::<DatasetName>().ok();
    let classes = dataset.map(|d| d.info().num_classes).unwrap_or(100);
    let half = |n: usize| n.div_ceil(2);
    let trained = match spec.subsample.as_str() {
        "base" => half(classes),
        "new" => classes - half(classes),
        _ => classes,
    };
    let evaluated: usize = spec
        .eval_subsets
        .iter()
        .map(|s| match s.as_str() {
            "base" => half(classes),
            "new" => classes - half(classes),
            _ => classes,
        })
        .sum();
    let eval = evaluated as f64;
    if *kind == CellKind::Features {
        // Each subset's images are encoded under their own key: "all" once, "base" and "new"
        // a class half each (taken as half the images).
        let images = dataset.map(|d| d.info().num_test).unwrap_or(1_000) as f64;
        return IMAGE_PASS * images * eval / classes as f64 + eval;
    }
    if matches!(kind, CellKind::Evaluate { .. }) || spec.method == Method::Zsclip {
        return eval;
    }
    let items = spec.shots * trained;
    let steps = items.div_ceil(spec.batch_size.max(1));
    let mut epochs = spec.epochs;
    if let Some(sub) = &spec.subpt {
        if sub.trajectory.is_none() {
            epochs += sub.early_epochs;
        }
    }
    3.0 * (epochs * steps * trained) as f64 + eval
}

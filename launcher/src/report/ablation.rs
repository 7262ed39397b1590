//! Ablations: accuracy against the SubPT rank, early-stage length and NFL weight.
use super::collect::Loaded;
use super::fewshot::{insert_seed, STD_NOTE};
use super::stats::{mean, sample_std};
use super::table::{Cell, Table};
use std::collections::BTreeMap;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::result::harmonic_mean;

/// Settings that define an ablation point; λ is kept as text so it can be a map key. The
/// last field is what else tells the run apart from others at the same point (see
/// `label::distinguish`): ablation grids read together (`report --all`) that differ in, say,
/// epochs or weights keep rows of their own rather than colliding.
type Key = (
    String,
    String,
    usize,
    usize,
    Option<usize>,
    Option<usize>,
    String,
    String,
);

/// Every SubPT or NFL run, one row per distinct (rank, early epochs, λ), so the paper's
/// setting appears beside its variations. Few-shot runs report `all` accuracy, base-to-
/// novel runs the HM of their base and new accuracy.
pub fn ablations(runs: &[Loaded], warnings: &mut Vec<String>) -> Table {
    let mut cells: BTreeMap<Key, BTreeMap<u64, f64>> = BTreeMap::new();
    let mut metric_of: BTreeMap<Key, &'static str> = BTreeMap::new();
    for r in runs {
        let s = &r.result.spec;
        // Evaluations of a model trained elsewhere (domain generalisation) are that model's.
        if !(s.method.uses_subspace() || s.method.uses_nfl()) || s.evaluate_context.is_some() {
            continue;
        }
        let acc = &r.result.accuracy;
        let (metric, value) = if s.subsample == SubsampleClasses::All {
            match acc.get(&SubsampleClasses::All) {
                Some(&a) => ("all", a),
                None => continue,
            }
        } else {
            match (
                acc.get(&SubsampleClasses::Base),
                acc.get(&SubsampleClasses::New),
            ) {
                (Some(&b), Some(&n)) => ("hm", harmonic_mean(b, n)),
                _ => continue,
            }
        };
        let key: Key = (
            s.dataset.to_string(),
            s.subsample.to_string(),
            s.shots,
            super::label::MethodKey::of(s).order,
            s.subpt.as_ref().map(|p| p.rank),
            s.subpt.as_ref().map(|p| p.early_epochs),
            s.nfl
                .as_ref()
                .map(|n| n.lambda.to_string())
                .unwrap_or_default(),
            r.variant.clone(),
        );
        metric_of.insert(key.clone(), metric);
        insert_seed(&mut cells, key, s.seed, value, r, warnings);
    }
    let mut t = Table::new(
        "ablations",
        "Ablations (%): SubPT rank r, early epochs t_early, NFL weight λ",
        &[
            "dataset",
            "subsample",
            "shots",
            "method",
            "rank",
            "early_epochs",
            "lambda",
            "metric",
            "n",
            "mean",
            "std",
        ],
    );
    t.notes.push(STD_NOTE.into());
    for (key, per_seed) in &cells {
        let (dataset, subsample, shots, order, rank, early, lambda, variant) = key;
        let mut method = super::label::METHODS
            .get(*order)
            .map(|m| m.to_string())
            .unwrap_or_default();
        if !variant.is_empty() {
            method = format!("{method} [{variant}]");
        }
        let v: Vec<f64> = per_seed.values().copied().collect();
        let opt = |x: &Option<usize>| x.map(Cell::Int).unwrap_or(Cell::Text(String::new()));
        t.rows.push(vec![
            dataset.as_str().into(),
            subsample.as_str().into(),
            (*shots).into(),
            method.into(),
            opt(rank),
            opt(early),
            lambda.as_str().into(),
            metric_of[key].into(),
            v.len().into(),
            mean(&v).into(),
            sample_std(&v).into(),
        ]);
    }
    t
}

//! Ablations: accuracy against the SubPT rank, early-stage length, NFL weight, KgCoOp's
//! weight and ProGrad's λ.
use super::collect::Loaded;
use super::describe::{dataset_cell, protocol_phrase, Runs};
use super::label::MethodKey;
use super::rows::{insert_seed, PM_NOTE, STD_NOTE};
use super::stats::{mean, sample_std};
use super::table::{Cell, Latex, LatexColumn, Rank, Table};
use std::collections::{BTreeMap, BTreeSet};
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::Protocol;
use subpt_trainer::engine::result::harmonic_mean;
use subpt_trainer::engine::spec::RunSpec;

/// The settings an ablation varies, as text so they can be map keys (λ and W are floats);
/// empty where the method has no such setting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    rank: Option<usize>,
    early: Option<usize>,
    nfl_lambda: String,
    kg_weight: String,
    prograd_lambda: String,
}

impl Point {
    fn of(s: &RunSpec) -> Self {
        let text = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
        Point {
            rank: s.subpt.as_ref().map(|p| p.rank),
            early: s.subpt.as_ref().map(|p| p.early_epochs),
            nfl_lambda: text(s.nfl.as_ref().map(|n| n.lambda)),
            kg_weight: text(s.kg.as_ref().map(|k| k.weight)),
            prograd_lambda: text(s.prograd.as_ref().map(|p| p.lambda)),
        }
    }
}

/// Where an ablation point sits. The protocol is the one of the table the run's numbers
/// belong to (runs on all classes are few-shot cells, whatever grid ran them), so points of
/// two protocols never share a row. The last field is what else tells the run apart from
/// others at the same point (see `label::distinguish`): ablation grids read together
/// (`report --all`) that differ in, say, epochs or weights keep rows of their own rather
/// than colliding.
type Key = (String, usize, String, usize, usize, Point, String);

fn protocol_index(p: Protocol) -> usize {
    Protocol::ALL.iter().position(|q| *q == p).unwrap_or(0)
}

/// Every run of a method with an ablated setting (SubPT, NFL, KgCoOp, ProGrad), one row per
/// distinct point, so the paper's setting appears beside its variations. Few-shot runs report
/// `all` accuracy, base-to-novel runs the HM of their base and new accuracy.
pub fn ablations(runs: &[Loaded], warnings: &mut Vec<String>) -> Table {
    let mut cells: BTreeMap<Key, BTreeMap<u64, f64>> = BTreeMap::new();
    let mut metric_of: BTreeMap<Key, &'static str> = BTreeMap::new();
    let mut seen = Runs::default();
    for r in runs {
        let s = &r.result.spec;
        let m = s.method;
        let ablated = m.uses_subspace() || m.uses_nfl() || m.uses_kg() || m.uses_prograd();
        // Evaluations of a model trained elsewhere (domain generalisation) are that model's.
        if !ablated || s.evaluate_context.is_some() {
            continue;
        }
        let acc = &r.result.accuracy;
        let (metric, value, protocol) = if s.subsample == SubsampleClasses::All {
            match acc.get(&SubsampleClasses::All) {
                Some(&a) => ("all", a, Protocol::FewShot),
                None => continue,
            }
        } else {
            match (
                acc.get(&SubsampleClasses::Base),
                acc.get(&SubsampleClasses::New),
            ) {
                (Some(&b), Some(&n)) => ("hm", harmonic_mean(b, n), s.protocol),
                _ => continue,
            }
        };
        let key: Key = (
            s.dataset.to_string(),
            protocol_index(protocol),
            s.subsample.to_string(),
            s.shots,
            MethodKey::of(s).order,
            Point::of(s),
            r.variant.clone(),
        );
        metric_of.insert(key.clone(), metric);
        seen.add(s);
        insert_seed(&mut cells, key, s.seed, value, r, warnings);
    }
    let mut t = Table::new(
        "ablations",
        "Ablations (%): SubPT rank r, early epochs t_early, NFL weight λ, KgCoOp weight W, \
         ProGrad λ",
        &[
            "dataset",
            "protocol",
            "subsample",
            "shots",
            "method",
            "rank",
            "early_epochs",
            "lambda",
            "kg_weight",
            "prograd_lambda",
            "metric",
            "n",
            "mean",
            "std",
        ],
    );
    t.notes.push(STD_NOTE.into());
    let protocols: BTreeSet<usize> = cells.keys().map(|k| k.1).collect();
    let phrases: Vec<String> = protocols
        .iter()
        .map(|&p| protocol_phrase(Protocol::ALL[p]))
        .collect();
    if !phrases.is_empty() {
        t.context
            .push(format!("Protocols: {}.", phrases.join("; ")));
    }
    t.context.extend(seen.sentence());
    // Only the settings some row has: a grid of SubPT ranks needs no KgCoOp column.
    let used = |f: fn(&Point) -> bool| cells.keys().any(|k| f(&k.5));
    let mut columns = vec![
        LatexColumn::plain("Dataset", "dataset"),
        LatexColumn::plain("Protocol", "protocol"),
        LatexColumn::plain("Shots", "shots"),
        LatexColumn::plain("Method", "method"),
    ];
    type Setting = (&'static str, &'static str, fn(&Point) -> bool);
    let settings: [Setting; 5] = [
        ("r", "rank", |p| p.rank.is_some()),
        ("t_early", "early_epochs", |p| p.early.is_some()),
        ("λ (NFL)", "lambda", |p| !p.nfl_lambda.is_empty()),
        ("W (KgCoOp)", "kg_weight", |p| !p.kg_weight.is_empty()),
        ("λ (ProGrad)", "prograd_lambda", |p| {
            !p.prograd_lambda.is_empty()
        }),
    ];
    for (header, from, has) in settings {
        if used(has) {
            columns.push(LatexColumn::plain(header, from));
        }
    }
    columns.push(LatexColumn::plain("Metric", "metric"));
    columns.push(LatexColumn::accuracy("Accuracy", "mean", Some("std")));
    t.latex = Some(Latex {
        columns,
        notes: vec![
            PM_NOTE.into(),
            "Metric: accuracy on all classes (few-shot) or the HM of base and novel accuracy \
             (base-to-novel). Bold: the best setting of each method per dataset, protocol and \
             shot count."
                .into(),
        ],
    });
    for (key, per_seed) in &cells {
        let (dataset, protocol, subsample, shots, order, point, variant) = key;
        let m = MethodKey {
            order: *order,
            ablation: String::new(),
            runs: variant.clone(),
        };
        let v: Vec<f64> = per_seed.values().copied().collect();
        let opt = |x: &Option<usize>| x.map(Cell::Int).unwrap_or(Cell::Text(String::new()));
        let block = format!("{dataset}|{protocol}|{subsample}|{shots}|{order}|{variant}");
        t.push(
            vec![
                dataset_cell(dataset),
                Protocol::ALL[*protocol].name().into(),
                subsample.as_str().into(),
                (*shots).into(),
                m.cell(),
                opt(&point.rank),
                opt(&point.early),
                point.nfl_lambda.as_str().into(),
                point.kg_weight.as_str().into(),
                point.prograd_lambda.as_str().into(),
                metric_of[key].into(),
                v.len().into(),
                mean(&v).into(),
                sample_std(&v).into(),
            ],
            Rank {
                against: Some(block.clone()),
                block,
            },
        );
    }
    t
}

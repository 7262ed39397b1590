//! Base-to-novel generalisation: train on base classes, test on base and new; one table per
//! protocol, as the protocols differ in shots, schedules and the backbone of their papers.
use super::collect::Loaded;
use super::describe::{dataset_cell, protocol_phrase, Runs};
use super::label::{CellKey, MethodKey};
use super::rows::{insert_seed, labelled_note, rank, STD_NOTE};
use super::stats::{mean, sample_std};
use super::table::{Latex, LatexColumn, Table};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::Protocol;
use subpt_trainer::engine::result::harmonic_mean;
use subpt_trainer::engine::spec::RunSpec;

/// (base, new) accuracy per seed, grouped by (dataset, shots, method), of one protocol.
#[derive(Debug)]
pub struct BaseToNovel {
    /// The protocol of the runs: a base-to-novel one, or the one a run trained on base classes
    /// under other presets recorded (such runs get a table of their own).
    pub protocol: Protocol,
    pub cells: BTreeMap<CellKey, BTreeMap<u64, (f64, f64)>>,
    /// What the runs were, for the caption.
    pub runs: Runs,
}

/// Averaged base and novel accuracy and the HM of those averages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct B2nRow {
    pub base: f64,
    pub novel: f64,
    pub hm: f64,
    /// Seeds (dataset rows) or datasets (average rows) averaged.
    pub n: usize,
}

/// The base and new accuracy of a run trained on base classes.
fn base_and_new(r: &Loaded) -> Option<(f64, f64)> {
    let acc = &r.result.accuracy;
    if r.result.spec.subsample != SubsampleClasses::Base {
        return None;
    }
    Some((
        *acc.get(&SubsampleClasses::Base)?,
        *acc.get(&SubsampleClasses::New)?,
    ))
}

/// Tables in the order readers expect: the base-to-novel protocols first, in `Protocol::ALL`
/// order (SubPT's, then CoCoOp's), then any other presets runs trained on base classes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Order(bool, usize);

impl Order {
    fn of(p: Protocol) -> Self {
        let at = Protocol::ALL.iter().position(|q| *q == p).unwrap_or(0);
        Order(!p.is_base_to_novel(), at)
    }

    fn protocol(self) -> Protocol {
        Protocol::ALL[self.1]
    }
}

impl BaseToNovel {
    fn empty(protocol: Protocol) -> Self {
        BaseToNovel {
            protocol,
            cells: BTreeMap::new(),
            runs: Runs::default(),
        }
    }

    /// One per protocol among the runs, SubPT's always (its table is where readers look).
    /// Zero-shot CLIP trains nothing, so one run of it serves every base-to-novel protocol
    /// whose trained runs used its weights (a grid of two protocols holds one such cell, under
    /// the protocol that came first).
    pub fn gather(runs: &[Loaded], warnings: &mut Vec<String>) -> Vec<BaseToNovel> {
        let mut trained: BTreeMap<Order, BTreeSet<&PathBuf>> = BTreeMap::new();
        for r in runs {
            let s = &r.result.spec;
            if s.method.learns() && base_and_new(r).is_some() {
                trained
                    .entry(Order::of(s.protocol))
                    .or_default()
                    .insert(&s.weights);
            }
        }
        let protocols_of = |s: &RunSpec| -> Vec<Protocol> {
            let shared: Vec<Protocol> = trained
                .iter()
                .map(|(o, w)| (o.protocol(), w))
                .filter(|(p, w)| {
                    !s.method.learns() && p.is_base_to_novel() && w.contains(&s.weights)
                })
                .map(|(p, _)| p)
                .collect();
            match shared.is_empty() {
                true => vec![s.protocol],
                false => shared,
            }
        };
        let subpt = Order::of(Protocol::BaseToNovel);
        let mut out: BTreeMap<Order, BaseToNovel> =
            [(subpt, Self::empty(Protocol::BaseToNovel))].into();
        for r in runs {
            let Some(value) = base_and_new(r) else {
                continue;
            };
            let s = &r.result.spec;
            for p in protocols_of(s) {
                let b = out.entry(Order::of(p)).or_insert_with(|| Self::empty(p));
                let key = (s.dataset.to_string(), s.shots, MethodKey::of_run(r));
                b.runs.add(s);
                insert_seed(&mut b.cells, key, s.seed, value, r, warnings);
            }
        }
        out.into_values().collect()
    }

    /// The file stem of its tables: the protocol's name (`base_to_novel`,
    /// `base_to_novel_cocoop`), or `base_to_novel_<protocol>` for runs of other presets.
    pub fn name(&self) -> String {
        match self.protocol.is_base_to_novel() {
            true => self.protocol.name().to_string(),
            false => format!("base_to_novel_{}", self.protocol),
        }
    }

    /// Per dataset: seed means of base and novel, then the HM of those means (the
    /// convention of the CoCoOp tables, not the mean of per-seed HMs).
    pub fn per_dataset(&self) -> BTreeMap<CellKey, B2nRow> {
        self.cells
            .iter()
            .map(|(k, seeds)| {
                let b: Vec<f64> = seeds.values().map(|v| v.0).collect();
                let n: Vec<f64> = seeds.values().map(|v| v.1).collect();
                (k.clone(), row(&b, &n))
            })
            .collect()
    }

    /// Per (shots, method): base and novel averaged over datasets, then their HM (not the
    /// mean of the per-dataset HMs).
    pub fn averages(&self) -> BTreeMap<(usize, MethodKey), B2nRow> {
        let mut by: BTreeMap<(usize, MethodKey), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for ((_, shots, m), r) in self.per_dataset() {
            let e = by.entry((shots, m)).or_default();
            e.0.push(r.base);
            e.1.push(r.novel);
        }
        by.into_iter().map(|(k, (b, n))| (k, row(&b, &n))).collect()
    }

    /// The datasets each (shots, method) has a cell on: what its average row is over.
    pub fn datasets(&self) -> BTreeMap<(usize, MethodKey), BTreeSet<String>> {
        super::label::datasets_of(&self.cells)
    }

    pub fn title(&self) -> String {
        match self.protocol.is_base_to_novel() {
            true => format!(
                "Base-to-novel accuracy (%), {}",
                protocol_phrase(self.protocol)
            ),
            false => format!(
                "Base-to-novel accuracy (%) of runs trained on base classes with the presets of \
                 {}",
                protocol_phrase(self.protocol)
            ),
        }
    }

    /// The table; `published` says where this protocol's published averages are compared
    /// with ours, or that there are none.
    pub fn table(&self, published: &str) -> Table {
        let mut t = Table::new(
            &self.name(),
            &self.title(),
            &[
                "dataset",
                "shots",
                "method",
                "n",
                "base",
                "novel",
                "hm",
                "base std",
                "novel std",
            ],
        );
        t.context.extend(self.runs.sentence());
        t.notes.push(STD_NOTE.into());
        t.notes.push(
            "hm is the harmonic mean of the averaged base and novel accuracies; on `average` \
             rows base and novel are averaged over datasets first (n counts datasets)."
                .into(),
        );
        t.notes.push(published.into());
        // The protocol fixes the shots: zero-shot CLIP (0 shots) is ranked with the trained
        // methods, unless the runs hold other shot counts too.
        let one_shot_count = self.runs.shots.len() <= 1;
        let mut columns = vec![LatexColumn::plain("Dataset", "dataset")];
        if !one_shot_count {
            columns.push(LatexColumn::plain("Shots", "shots"));
        }
        columns.extend([
            LatexColumn::plain("Method", "method"),
            LatexColumn::accuracy("Base", "base", Some("base std")),
            LatexColumn::accuracy("Novel", "novel", Some("novel std")),
            LatexColumn::accuracy("HM", "hm", None),
        ]);
        t.latex = Some(Latex {
            columns,
            notes: vec![
                "Base and novel: mean ± sample std over seeds (std where a cell has at least \
                 two seeds); HM: the harmonic mean of the mean base and novel accuracy, on the \
                 average rows of base and novel averaged over datasets."
                    .into(),
                "Bold: the best per dataset among methods at their papers' settings; average \
                 rows rank among methods averaged over the same datasets."
                    .into(),
            ],
        });
        if let Some(l) = t.latex.as_mut() {
            l.notes
                .extend(labelled_note(self.cells.keys().map(|k| &k.2)));
        }
        let block = |d: &str, shots: usize| match one_shot_count {
            true => d.to_string(),
            false => format!("{d}|{shots}"),
        };
        for ((dataset, shots, m), r) in self.per_dataset() {
            let seeds = &self.cells[&(dataset.clone(), shots, m.clone())];
            let b: Vec<f64> = seeds.values().map(|v| v.0).collect();
            let n: Vec<f64> = seeds.values().map(|v| v.1).collect();
            t.push(
                vec![
                    dataset_cell(&dataset),
                    shots.into(),
                    m.cell(),
                    r.n.into(),
                    r.base.into(),
                    r.novel.into(),
                    r.hm.into(),
                    sample_std(&b).into(),
                    sample_std(&n).into(),
                ],
                rank(block(&dataset, shots), &m, None),
            );
        }
        let datasets = self.datasets();
        for ((shots, m), r) in self.averages() {
            let over = datasets.get(&(shots, m.clone()));
            t.push(
                vec![
                    dataset_cell("average"),
                    shots.into(),
                    m.cell(),
                    r.n.into(),
                    r.base.into(),
                    r.novel.into(),
                    r.hm.into(),
                    None.into(),
                    None.into(),
                ],
                rank(block("average", shots), &m, over),
            );
        }
        t
    }
}

fn row(base: &[f64], novel: &[f64]) -> B2nRow {
    let b = mean(base).unwrap_or(0.0);
    let n = mean(novel).unwrap_or(0.0);
    B2nRow {
        base: b,
        novel: n,
        hm: harmonic_mean(b, n),
        n: base.len(),
    }
}

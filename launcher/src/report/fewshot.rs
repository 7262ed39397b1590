//! Few-shot classification (all classes).
use super::collect::Loaded;
use super::describe::{dataset_cell, protocol_phrase, Runs};
use super::dg::DgRoles;
use super::label::{CellKey, MethodKey};
use super::rows::{insert_seed, labelled_note, rank, PM_NOTE, STD_NOTE};
use super::stats::{mean, sample_std};
use super::table::{Cell, Latex, LatexColumn, Table};
use std::collections::{BTreeMap, BTreeSet};
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::{Protocol, DG_TARGETS};

/// Accuracy on `all` per seed, grouped by (dataset, shots, method).
#[derive(Debug, Default)]
pub struct FewShot {
    pub cells: BTreeMap<CellKey, BTreeMap<u64, f64>>,
    /// The fewest training images any class had, over the seeds (a class smaller than the
    /// asked shot count trains on all it has).
    pub fewest: BTreeMap<CellKey, usize>,
    /// What the runs were, for the caption.
    pub runs: Runs,
}

impl FewShot {
    /// Runs trained and tested on all classes, excluding domain-generalisation targets (and
    /// zero-shot CLIP on a target nothing was trained on).
    pub fn gather(runs: &[Loaded], warnings: &mut Vec<String>) -> Self {
        let roles = DgRoles::of(runs);
        let trained: BTreeSet<&str> = runs
            .iter()
            .map(|r| &r.result.spec)
            .filter(|s| s.trains() && s.subsample == SubsampleClasses::All)
            .map(|s| s.dataset.id())
            .collect();
        let mut cells = BTreeMap::new();
        let mut fewest = BTreeMap::new();
        let mut seen = Runs::default();
        for r in runs {
            let s = &r.result.spec;
            let target_only = roles.role(r) == Some(1) && !trained.contains(s.dataset.id());
            if s.subsample != SubsampleClasses::All
                || s.evaluate_context.is_some()
                || DG_TARGETS.contains(&s.dataset)
                || target_only
            {
                continue;
            }
            let Some(&acc) = r.result.accuracy.get(&SubsampleClasses::All) else {
                continue;
            };
            let key = (s.dataset.to_string(), s.shots, MethodKey::of_run(r));
            if let Some(&n) = r.result.train_per_class.iter().min() {
                let f = fewest.entry(key.clone()).or_insert(n);
                *f = (*f).min(n);
            }
            seen.add(s);
            insert_seed(&mut cells, key, s.seed, acc, r, warnings);
        }
        FewShot {
            cells,
            fewest,
            runs: seen,
        }
    }

    /// The datasets each (shots, method) has a cell on: what its average row is over.
    fn datasets(&self) -> BTreeMap<(usize, MethodKey), BTreeSet<String>> {
        super::label::datasets_of(&self.cells)
    }

    /// Per (shots, method): the mean over datasets of the per-dataset seed means, and how
    /// many datasets it covers.
    pub fn averages(&self) -> BTreeMap<(usize, MethodKey), (f64, usize)> {
        let mut by: BTreeMap<(usize, MethodKey), Vec<f64>> = BTreeMap::new();
        for ((_, shots, m), seeds) in &self.cells {
            let v: Vec<f64> = seeds.values().copied().collect();
            if let Some(x) = mean(&v) {
                by.entry((*shots, m.clone())).or_default().push(x);
            }
        }
        by.into_iter()
            .filter_map(|(k, v)| mean(&v).map(|m| (k, (m, v.len()))))
            .collect()
    }

    pub fn table(&self) -> Table {
        // Zero-shot CLIP draws nothing (its one run is seed 0): no seed column of its own.
        let seeds: BTreeSet<u64> = self
            .cells
            .iter()
            .filter(|((_, shots, _), _)| *shots > 0)
            .flat_map(|(_, s)| s.keys().copied())
            .collect();
        let mut headers = vec!["dataset", "shots", "fewest", "method", "n", "mean", "std"];
        let seed_cols: Vec<String> = seeds.iter().map(|s| format!("seed {s}")).collect();
        headers.extend(seed_cols.iter().map(String::as_str));
        let title = format!(
            "Few-shot accuracy (%), all classes, {}",
            protocol_phrase(Protocol::FewShot)
        );
        let mut t = Table::new("fewshot", &title, &headers);
        t.context.extend(self.runs.sentence());
        t.latex = Some(Latex {
            columns: vec![
                LatexColumn::plain("Dataset", "dataset"),
                LatexColumn::plain("Shots", "shots"),
                LatexColumn::plain("Method", "method"),
                LatexColumn::accuracy("Accuracy", "mean", Some("std")),
            ],
            notes: vec![
                PM_NOTE.into(),
                "Bold: the best per dataset and shot count among methods at their papers' \
                 settings; average rows rank among methods averaged over the same datasets."
                    .into(),
            ],
        });
        if let Some(l) = t.latex.as_mut() {
            l.notes
                .extend(labelled_note(self.cells.keys().map(|k| &k.2)));
        }
        t.notes.push(STD_NOTE.into());
        t.notes.push(
            "`average` rows: mean over datasets of the per-dataset means; n counts datasets."
                .into(),
        );
        t.notes.push(
            "fewest: the fewest training images of any class (below shots where a class has \
             fewer; those classes train on all they have)."
                .into(),
        );
        for (key, per_seed) in &self.cells {
            let (dataset, shots, m) = key;
            let v: Vec<f64> = per_seed.values().copied().collect();
            let fewest = self
                .fewest
                .get(key)
                .map_or(Cell::Text(String::new()), |&n| n.into());
            let mut row: Vec<Cell> = vec![
                dataset_cell(dataset),
                (*shots).into(),
                fewest,
                m.cell(),
                v.len().into(),
                mean(&v).into(),
                sample_std(&v).into(),
            ];
            row.extend(seeds.iter().map(|s| Cell::Num(per_seed.get(s).copied())));
            t.push(row, rank(format!("{dataset}|{shots}"), m, None));
        }
        let datasets = self.datasets();
        for ((shots, m), (avg, n)) in self.averages() {
            let mut row: Vec<Cell> = vec![
                dataset_cell("average"),
                shots.into(),
                Cell::Text(String::new()),
                m.cell(),
                n.into(),
                avg.into(),
                Cell::Num(None),
            ];
            row.extend(seeds.iter().map(|_| Cell::Num(None)));
            let over = datasets.get(&(shots, m.clone()));
            t.push(row, rank(format!("average|{shots}"), &m, over));
        }
        t
    }
}

//! Base-to-novel generalisation: train on base classes, test on base and new.
use super::collect::Loaded;
use super::fewshot::{insert_seed, STD_NOTE};
use super::label::{CellKey, MethodKey};
use super::stats::{mean, sample_std};
use super::table::Table;
use std::collections::BTreeMap;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::result::harmonic_mean;

/// (base, new) accuracy per seed, grouped by (dataset, shots, method).
#[derive(Debug, Default)]
pub struct BaseToNovel {
    pub cells: BTreeMap<CellKey, BTreeMap<u64, (f64, f64)>>,
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

impl BaseToNovel {
    pub fn gather(runs: &[Loaded], warnings: &mut Vec<String>) -> Self {
        let mut cells = BTreeMap::new();
        for r in runs {
            let s = &r.result.spec;
            let acc = &r.result.accuracy;
            let (Some(&b), Some(&n)) = (
                acc.get(&SubsampleClasses::Base),
                acc.get(&SubsampleClasses::New),
            ) else {
                continue;
            };
            if s.subsample != SubsampleClasses::Base {
                continue;
            }
            let key = (s.dataset.to_string(), s.shots, MethodKey::of_run(r));
            insert_seed(&mut cells, key, s.seed, (b, n), r, warnings);
        }
        BaseToNovel { cells }
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

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "base_to_novel",
            "Base-to-novel accuracy (%)",
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
        t.notes.push(STD_NOTE.into());
        t.notes.push(
            "hm is the harmonic mean of the averaged base and novel accuracies; on `average` \
             rows base and novel are averaged over datasets first (n counts datasets)."
                .into(),
        );
        for ((dataset, shots, m), r) in self.per_dataset() {
            let seeds = &self.cells[&(dataset.clone(), shots, m.clone())];
            let b: Vec<f64> = seeds.values().map(|v| v.0).collect();
            let n: Vec<f64> = seeds.values().map(|v| v.1).collect();
            t.rows.push(vec![
                dataset.into(),
                shots.into(),
                m.label().into(),
                r.n.into(),
                r.base.into(),
                r.novel.into(),
                r.hm.into(),
                sample_std(&b).into(),
                sample_std(&n).into(),
            ]);
        }
        for ((shots, m), r) in self.averages() {
            t.rows.push(vec![
                "average".into(),
                shots.into(),
                m.label().into(),
                r.n.into(),
                r.base.into(),
                r.novel.into(),
                r.hm.into(),
                None.into(),
                None.into(),
            ]);
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

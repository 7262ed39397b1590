//! Few-shot classification (all classes) and domain generalisation tables.
use super::collect::Loaded;
use super::label::{CellKey, MethodKey};
use super::stats::{mean, sample_std};
use super::table::{Cell, Table};
use crate::grid::PROTOCOL_SHOTS;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::presets::DG_TARGETS;

/// Accuracy on `all` per seed, grouped by (dataset, shots, method).
#[derive(Debug, Default)]
pub struct FewShot {
    pub cells: BTreeMap<CellKey, BTreeMap<u64, f64>>,
    /// The fewest training images any class had, over the seeds (a class smaller than the
    /// asked shot count trains on all it has).
    pub fewest: BTreeMap<CellKey, usize>,
}

pub const STD_NOTE: &str =
    "std is the sample standard deviation over seeds (divides by n - 1); empty for one seed.";

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
            insert_seed(&mut cells, key, s.seed, acc, r, warnings);
        }
        FewShot { cells, fewest }
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
        let mut t = Table::new("fewshot", "Few-shot accuracy (%), all classes", &headers);
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
                dataset.as_str().into(),
                (*shots).into(),
                fewest,
                m.label().into(),
                v.len().into(),
                mean(&v).into(),
                sample_std(&v).into(),
            ];
            row.extend(seeds.iter().map(|s| Cell::Num(per_seed.get(s).copied())));
            t.rows.push(row);
        }
        for ((shots, m), (avg, n)) in self.averages() {
            let mut row: Vec<Cell> = vec![
                "average".into(),
                shots.into(),
                Cell::Text(String::new()),
                m.label().into(),
                n.into(),
                avg.into(),
                Cell::Num(None),
            ];
            row.extend(seeds.iter().map(|_| Cell::Num(None)));
            t.rows.push(row);
        }
        t
    }
}

/// Records one seed's value, keeping the first when a seed repeats (paths are sorted, so
/// the choice is stable) and saying so.
pub fn insert_seed<K: Ord, V>(
    cells: &mut BTreeMap<K, BTreeMap<u64, V>>,
    key: K,
    seed: u64,
    value: V,
    run: &Loaded,
    warnings: &mut Vec<String>,
) {
    match cells.entry(key).or_default().entry(seed) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(value);
        }
        std::collections::btree_map::Entry::Occupied(_) => warnings.push(format!(
            "ignoring {}: another run of the same cell already has seed {seed}",
            run.path.display()
        )),
    }
}

/// How a run takes part in domain generalisation.
struct DgRoles {
    /// Result directories of the models that DG evaluations load.
    sources: BTreeSet<PathBuf>,
    source_datasets: BTreeSet<DatasetName>,
    target_datasets: BTreeSet<DatasetName>,
    /// Any ImageNet variant present: ImageNet runs are then sources, linked or not.
    imagenet_variants: bool,
}

impl DgRoles {
    fn of(runs: &[Loaded]) -> Self {
        let sources: BTreeSet<PathBuf> = runs
            .iter()
            .filter_map(|r| {
                r.result
                    .spec
                    .evaluate_context
                    .as_ref()?
                    .parent()
                    .map(Path::to_path_buf)
            })
            .collect();
        let source_datasets = runs
            .iter()
            .filter(|r| r.path.parent().is_some_and(|d| sources.contains(d)))
            .map(|r| r.result.spec.dataset)
            .collect();
        let target_datasets = runs
            .iter()
            .map(|r| &r.result.spec)
            .filter(|s| s.evaluate_context.is_some() || DG_TARGETS.contains(&s.dataset))
            .map(|s| s.dataset)
            .collect();
        let imagenet_variants = runs
            .iter()
            .any(|r| DG_TARGETS.contains(&r.result.spec.dataset));
        DgRoles {
            sources,
            source_datasets,
            target_datasets,
            imagenet_variants,
        }
    }

    /// 0 for a source model (or zero-shot CLIP on a source dataset), 1 for a target, None for
    /// a run outside the protocol.
    fn role(&self, r: &Loaded) -> Option<usize> {
        let s = &r.result.spec;
        let zero_shot = !s.method.learns() && s.subsample == SubsampleClasses::All;
        if s.evaluate_context.is_some()
            || DG_TARGETS.contains(&s.dataset)
            || (zero_shot && self.target_datasets.contains(&s.dataset))
        {
            Some(1)
        } else if r.path.parent().is_some_and(|d| self.sources.contains(d))
            || (s.dataset == DatasetName::ImageNet && self.imagenet_variants)
            || (zero_shot
                && self.source_datasets.contains(&s.dataset)
                && [0, PROTOCOL_SHOTS].contains(&s.shots))
        {
            Some(0)
        } else {
            None
        }
    }
}

/// Domain generalisation: prompts trained on a source dataset (ImageNet, or the embedded
/// Fashion-MNIST) tested on its shifted variants. Rows are the source and each target, per
/// method; a target is a run that evaluated another cell's context (or an ImageNet variant).
pub fn domain_generalisation(runs: &[Loaded], warnings: &mut Vec<String>) -> Table {
    let roles = DgRoles::of(runs);
    let mut cells: BTreeMap<(usize, String, usize, MethodKey), BTreeMap<u64, f64>> =
        BTreeMap::new();
    for r in runs {
        let s = &r.result.spec;
        let Some(role) = roles.role(r) else {
            continue;
        };
        let Some(&acc) = r.result.accuracy.get(&SubsampleClasses::All) else {
            continue;
        };
        let key = (role, s.dataset.to_string(), s.shots, MethodKey::of_run(r));
        insert_seed(&mut cells, key, s.seed, acc, r, warnings);
    }
    let mut t = Table::new(
        "domain_generalisation",
        "Domain generalisation accuracy (%): source model, shifted targets",
        &["role", "dataset", "shots", "method", "n", "mean", "std"],
    );
    t.notes.push(STD_NOTE.into());
    for ((role, dataset, shots, m), per_seed) in &cells {
        let v: Vec<f64> = per_seed.values().copied().collect();
        t.rows.push(vec![
            if *role == 0 { "source" } else { "target" }.into(),
            dataset.as_str().into(),
            (*shots).into(),
            m.label().into(),
            v.len().into(),
            mean(&v).into(),
            sample_std(&v).into(),
        ]);
    }
    t
}

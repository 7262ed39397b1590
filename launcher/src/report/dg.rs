//! Domain generalisation: a source model evaluated on shifted versions of its dataset.
use super::collect::Loaded;
use super::describe::{dataset_cell, protocol_phrase, Runs};
use super::label::MethodKey;
use super::rows::{insert_seed, labelled_note, rank, PM_NOTE, STD_NOTE};
use super::stats::{mean, sample_std};
use super::table::{Latex, LatexColumn, Table};
use crate::grid::PROTOCOL_SHOTS;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::presets::{Protocol, DG_TARGETS};

/// How a run takes part in domain generalisation.
pub(super) struct DgRoles {
    /// Result directories of the models that DG evaluations load.
    sources: BTreeSet<PathBuf>,
    source_datasets: BTreeSet<DatasetName>,
    target_datasets: BTreeSet<DatasetName>,
    /// Any ImageNet variant present: ImageNet runs are then sources, linked or not.
    imagenet_variants: bool,
}

impl DgRoles {
    pub(super) fn of(runs: &[Loaded]) -> Self {
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
    pub(super) fn role(&self, r: &Loaded) -> Option<usize> {
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
    let mut seen = Runs::default();
    for r in runs {
        let s = &r.result.spec;
        let Some(role) = roles.role(r) else {
            continue;
        };
        let Some(&acc) = r.result.accuracy.get(&SubsampleClasses::All) else {
            continue;
        };
        let key = (role, s.dataset.to_string(), s.shots, MethodKey::of_run(r));
        seen.add(s);
        insert_seed(&mut cells, key, s.seed, acc, r, warnings);
    }
    let title = format!(
        "Domain generalisation accuracy (%): source model, shifted targets, {}",
        protocol_phrase(Protocol::DomainGeneralization)
    );
    let mut t = Table::new(
        "domain_generalisation",
        &title,
        &["role", "dataset", "shots", "method", "n", "mean", "std"],
    );
    t.context.extend(seen.sentence());
    // The protocol fixes the shots: zero-shot CLIP (0 shots) is ranked with the trained
    // models, unless other shot counts were run too.
    let one_shot_count = seen.shots.len() <= 1;
    let mut columns = vec![
        LatexColumn::plain("", "role"),
        LatexColumn::plain("Dataset", "dataset"),
    ];
    if !one_shot_count {
        columns.push(LatexColumn::plain("Shots", "shots"));
    }
    columns.push(LatexColumn::plain("Method", "method"));
    columns.push(LatexColumn::accuracy("Accuracy", "mean", Some("std")));
    t.latex = Some(Latex {
        columns,
        notes: vec![
            PM_NOTE.into(),
            "Bold: the best per dataset among methods at their papers' settings.".into(),
        ],
    });
    if let Some(l) = t.latex.as_mut() {
        l.notes.extend(labelled_note(cells.keys().map(|k| &k.3)));
    }
    t.notes.push(STD_NOTE.into());
    for ((role, dataset, shots, m), per_seed) in &cells {
        let v: Vec<f64> = per_seed.values().copied().collect();
        let role = if *role == 0 { "source" } else { "target" };
        let block = match one_shot_count {
            true => format!("{role}|{dataset}"),
            false => format!("{role}|{dataset}|{shots}"),
        };
        t.push(
            vec![
                role.into(),
                dataset_cell(dataset),
                (*shots).into(),
                m.cell(),
                v.len().into(),
                mean(&v).into(),
                sample_std(&v).into(),
            ],
            rank(block, m, None),
        );
    }
    t
}

//! From a grid file to cells: protocol presets (spec §5), the product over every axis,
//! overrides last, de-duplication by spec hash, then the dependencies.
use crate::grid::config::{GridConfig, Protocol};
use crate::grid::overrides::apply;
use crate::grid::{estimate_cost, features_id, topological_order, Cell, CellKind, Grid, GridError};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::presets;
use subpt_trainer::engine::spec::{Method, RunSpec};
use subpt_trainer::store::CellDir;

pub use presets::PROTOCOL_SHOTS;

/// The file a stage-A (CoOp / CoOp+NFL) cell leaves for SubPT cells to project onto.
pub fn trajectory_path(output_dir: &Path, source_id: &str) -> PathBuf {
    CellDir::of(output_dir, source_id).trajectory()
}

/// The spec before overrides of one (protocol, dataset, shots, seed, method, weights): the
/// trainer's preset, with the grid's data root and cache.
fn preset(
    cfg: &GridConfig,
    protocol: Protocol,
    dataset: DatasetName,
    shots: usize,
    seed: u64,
    method: Method,
    weights: &Path,
) -> RunSpec {
    let mut s = presets::preset(
        protocol,
        dataset,
        cfg.data_root.clone(),
        method,
        shots,
        seed,
        weights.to_path_buf(),
    );
    if let Some(c) = &cfg.cache_dir {
        s.cache_dir = c.clone();
    }
    s
}

/// Every combination of override values, in file order.
fn combinations(cfg: &GridConfig) -> Vec<Vec<(&str, &Value)>> {
    let mut out: Vec<Vec<(&str, &Value)>> = vec![Vec::new()];
    for o in &cfg.overrides {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                o.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((o.key.as_str(), v));
                    c
                })
            })
            .collect();
    }
    out
}

/// A cell's setting that cannot make a result, and which cell it is.
struct Refusal {
    key: String,
    line: Option<usize>,
    message: String,
    cell: String,
}

/// Every refused setting of a grid, one error per cause (a bad rank in a 1,000-cell grid is
/// one line naming how many cells it hits, not the first cell alone).
fn refused(cfg: &GridConfig, all: Vec<Refusal>) -> GridError {
    type Cause = (String, Option<usize>, String);
    let mut causes: Vec<(Cause, Vec<String>)> = Vec::new();
    for r in all {
        let cause = (r.key, r.line, r.message);
        match causes.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, cells)) => cells.push(r.cell),
            None => causes.push((cause, vec![r.cell])),
        }
    }
    let mut errors: Vec<GridError> = causes
        .into_iter()
        .map(|((key, line, message), cells)| {
            let which = match cells.len() {
                1 => format!("cell {}", cells[0]),
                n => format!("{n} cells, e.g. {}", cells[0]),
            };
            GridError::Invalid {
                path: cfg.source.clone(),
                key,
                line,
                message: format!("{message} [{which}]"),
            }
        })
        .collect();
    match errors.len() {
        1 => errors.remove(0),
        _ => GridError::Several(errors),
    }
}

struct Builder<'a> {
    cfg: &'a GridConfig,
    cells: Vec<Cell>,
    index: HashMap<String, usize>,
}

impl Builder<'_> {
    /// Adds a cell unless an identical one exists; returns the index of the cell holding it.
    fn add(
        &mut self,
        protocol: Protocol,
        kind: CellKind,
        spec: RunSpec,
        deps: Vec<String>,
    ) -> usize {
        let id = spec.hash();
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        let cost = estimate_cost(&spec, &kind);
        self.index.insert(id.clone(), self.cells.len());
        self.cells.push(Cell {
            out_dir: self.cfg.output_dir.join(&id),
            id,
            protocol,
            kind,
            spec,
            deps,
            after: Vec::new(),
            cost,
        });
        self.cells.len() - 1
    }

    /// The spec with the overrides applied, or the first setting of it that cannot make a
    /// result, named where the user wrote it or with the preset that set it.
    fn overridden(
        &self,
        spec: &RunSpec,
        combo: &[(&str, &Value)],
    ) -> Result<Result<RunSpec, Refusal>, GridError> {
        let out = self.applied(spec, combo)?.reduced_to_what_it_reads();
        let Some(p) = out.problems().into_iter().next() else {
            return Ok(Ok(out));
        };
        let written = self.cfg.overrides.iter().find(|o| o.key == p.key);
        let refusal = match written {
            Some(o) => Refusal {
                key: format!("overrides.{}", p.key),
                line: o.line,
                message: p.message,
                cell: out.describe(),
            },
            None => Refusal {
                key: "overrides".to_string(),
                line: self.cfg.overrides.first().and_then(|o| o.line),
                message: format!(
                    "{}: {} (the {} preset sets it for {}; set `overrides.{}` to change it)",
                    p.key, p.message, out.protocol, out.method, p.key
                ),
                cell: out.describe(),
            },
        };
        Ok(Err(refusal))
    }

    fn applied(&self, spec: &RunSpec, combo: &[(&str, &Value)]) -> Result<RunSpec, GridError> {
        apply(spec, combo).map_err(|message| {
            let first = self.cfg.overrides.first();
            GridError::Invalid {
                path: self.cfg.source.clone(),
                key: format!(
                    "overrides.{}",
                    combo.iter().map(|(k, _)| *k).collect::<Vec<_>>().join("+")
                ),
                line: first.and_then(|o| o.line),
                message,
            }
        })
    }
}

pub fn expand(cfg: &GridConfig) -> Result<Grid, GridError> {
    let combos = combinations(cfg);
    let mut b = Builder {
        cfg,
        cells: Vec::new(),
        index: HashMap::new(),
    };
    // Stage 1: training cells (unlinked), and which of them are DG models.
    let mut pending: Vec<(Protocol, RunSpec)> = Vec::new();
    let mut refusals = Vec::new();
    for &protocol in &cfg.protocols {
        let fixed: Vec<usize> = presets::protocol_shots(protocol).into_iter().collect();
        let (datasets, shots): (&[DatasetName], &[usize]) = match protocol {
            Protocol::FewShot => (&cfg.datasets, &cfg.shots),
            Protocol::BaseToNovel | Protocol::BaseToNovelCocoop => (&cfg.datasets, &fixed),
            Protocol::DomainGeneralization => (std::slice::from_ref(&cfg.dg_source), &fixed),
        };
        for &d in datasets {
            for &k in shots {
                for &seed in &cfg.seeds {
                    for &m in &cfg.methods {
                        for w in &cfg.weights {
                            let base = preset(cfg, protocol, d, k, seed, m, w);
                            for combo in &combos {
                                match b.overridden(&base, combo)? {
                                    Ok(spec) => pending.push((protocol, spec)),
                                    Err(r) => refusals.push(r),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if !refusals.is_empty() {
        return Err(refused(cfg, refusals));
    }
    // Stage 2: link SubPT cells to the stage-A cell they share everything else with.
    let unlinked: HashMap<String, ()> = pending.iter().map(|(_, s)| (s.hash(), ())).collect();
    let mut dg_models = Vec::new();
    for (protocol, mut spec) in pending {
        let mut deps = Vec::new();
        if let Some(src_method) = spec.method.trajectory_source() {
            if spec.subpt.as_ref().is_some_and(|s| s.trajectory.is_none()) {
                let mut src = spec.clone();
                src.method = src_method;
                src.subpt = None;
                let src_id = src.hash();
                if unlinked.contains_key(&src_id) {
                    let early = spec.subpt.as_ref().map_or(0, |s| s.early_epochs);
                    if early > spec.epochs {
                        // The shared trajectory holds only `epochs` contexts.
                        return Err(GridError::Invalid {
                            path: cfg.source.clone(),
                            key: "overrides.subpt.early_epochs".into(),
                            line: cfg
                                .overrides
                                .iter()
                                .find(|o| o.key == "subpt.early_epochs")
                                .and_then(|o| o.line),
                            message: format!(
                                "t_early {early} exceeds the {} epochs of the {} run on {} whose \
                                 trajectory it reuses",
                                spec.epochs, src_method, spec.dataset
                            ),
                        });
                    }
                    if let Some(sub) = &mut spec.subpt {
                        sub.trajectory = Some(trajectory_path(&cfg.output_dir, &src_id));
                    }
                    deps.push(src_id);
                }
            }
        }
        let i = b.add(protocol, CellKind::Train, spec, deps);
        if protocol == Protocol::DomainGeneralization && !dg_models.contains(&i) {
            dg_models.push(i);
        }
    }
    // Stage 3: the DG evaluations of each source model.
    for i in dg_models {
        let model = b.cells[i].clone();
        for &target in &cfg.dg_targets {
            let mut spec = model.spec.clone();
            spec.dataset = target;
            spec.subsample = SubsampleClasses::All;
            spec.eval_subsets = vec![SubsampleClasses::All];
            // Zero-shot CLIP has no context: its target cell is plain zero-shot evaluation.
            if spec.method.learns() {
                spec.evaluate_context = Some(CellDir::new(&model.out_dir).context());
            }
            let kind = CellKind::Evaluate {
                model: model.id.clone(),
            };
            b.add(
                Protocol::DomainGeneralization,
                kind,
                spec,
                vec![model.id.clone()],
            );
        }
    }
    // Stage 4: one feature cell per (dataset, data root, weights, precision, cache) ahead of
    // every cell that reads those test features.
    let mut groups: Vec<(RunSpec, Vec<usize>)> = Vec::new();
    for (i, c) in b.cells.iter().enumerate() {
        let s = &c.spec;
        let same = |f: &RunSpec| {
            (&f.dataset, &f.root, &f.weights, f.precision, &f.cache_dir)
                == (&s.dataset, &s.root, &s.weights, s.precision, &s.cache_dir)
        };
        let g = match groups.iter().position(|(f, _)| same(f)) {
            Some(g) => g,
            None => {
                let mut f = presets::preset(
                    presets::Protocol::FewShot,
                    s.dataset,
                    s.root.clone(),
                    Method::Zsclip,
                    1,
                    0,
                    s.weights.clone(),
                );
                f.precision = s.precision;
                f.cache_dir = s.cache_dir.clone();
                f.eval_subsets.clear();
                groups.push((f, Vec::new()));
                groups.len() - 1
            }
        };
        let f = &mut groups[g].0;
        for e in &s.eval_subsets {
            if !f.eval_subsets.contains(e) {
                f.eval_subsets.push(*e);
            }
        }
        groups[g].1.push(i);
    }
    for (mut spec, members) in groups {
        spec.eval_subsets.sort();
        let id = features_id(&spec);
        for m in members {
            b.cells[m].deps.push(id.clone());
        }
        b.cells.push(Cell {
            out_dir: cfg.output_dir.join(&id),
            cost: estimate_cost(&spec, &CellKind::Features),
            id,
            protocol: b.cells[0].protocol,
            kind: CellKind::Features,
            spec,
            deps: Vec::new(),
            after: Vec::new(),
        });
    }
    let cells = topological_order(&cfg.name, b.cells)?;
    Ok(Grid {
        name: cfg.name.clone(),
        source: cfg.source.clone(),
        output_dir: cfg.output_dir.clone(),
        cells,
    })
}

//! Benchmark grids: a YAML file naming datasets, protocols, shots, seeds, methods and
//! ablation axes, expanded into fully resolved cells (one `RunSpec` each) with the
//! dependencies between them (feature cells encoding each test set once, SubPT reusing a CoOp
//! trajectory, domain-generalisation evaluations reusing an ImageNet model).
//!
//! What to run (`plan/`):
//! - `config`: the YAML schema and its validation (errors name file, key and line), with
//!   `yaml_lines` finding where a key was written.
//! - `overrides`: setting `RunSpec` fields by dotted path; list values are axes.
//! - `expand`: protocol presets, the cartesian product, de-duplication and the DAG.
//! - `cost`: the relative cost estimate of a cell and what it writes.
//! - `dryrun`: the `--dry-run` listing.
//! - `shard`: the parts of a grid array tasks run (`--shard I/N`).
//!
//! How to run it (`run/`):
//! - `dispatch`: the scheduler (which cell next, on which worker; skips; the summary).
//! - `execute` / `scheduler`: running the cells in one process or over MPI rank groups.
//! - `claim`: a claim per cell, so processes sharing an output directory run each cell once.
//! - `progress`: live lines or log lines for a person watching.
//! - `interrupt`: the line a stopped grid prints (how much is done, rerun to resume).

pub mod cli;
mod plan;
mod run;
pub mod slurm;
#[cfg(test)]
mod tests;

pub use plan::shard::{self, Shard};
pub(crate) use plan::{config, cost, dryrun, expand, overrides, yaml_lines};
pub(crate) use run::dispatch;
pub use run::{claim, execute, interrupt, progress, scheduler};

pub use config::{GridConfig, Protocol};
pub use cost::estimate_cost;
pub use dryrun::dry_run;
pub use expand::{expand, PROTOCOL_SHOTS};
pub use overrides::apply_every as set_fields;

use std::path::{Path, PathBuf};
use subpt_trainer::engine::spec::RunSpec;

/// A user-input problem with a grid file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("cannot read the grid file {0}")]
    Io(subpt_trainer::io::IoError),
    /// Syntax, unknown keys, wrong types, unknown datasets or methods (serde's message
    /// carries the key path and the position).
    #[error("{path}:{line}:{column}: {message}")]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value that parses but makes no sense (bad override path, missing axis...).
    #[error("{path}{}: key `{key}`: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        key: String,
        line: Option<usize>,
        message: String,
    },
    /// Several settings refused, one error per cause.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Several(Vec<GridError>),
    #[error("grid `{name}`: dependency cycle through cell {cell}")]
    Cycle { name: String, cell: String },
    #[error("grid `{name}`: cell {cell} depends on {dep}, which is not in the grid")]
    Dangling {
        name: String,
        cell: String,
        dep: String,
    },
}

// By hand rather than `#[from]`, which would also report the wrapped error as the cause and
// print its message twice.
impl From<subpt_trainer::io::IoError> for GridError {
    fn from(e: subpt_trainer::io::IoError) -> Self {
        GridError::Io(e)
    }
}

impl GridError {
    /// The 1-based line the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            GridError::Yaml { line, .. } => Some(*line),
            GridError::Invalid { line, .. } => *line,
            GridError::Several(all) => all.iter().find_map(|e| e.line()),
            _ => None,
        }
    }
}

/// What a cell does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellKind {
    /// Train (or, for zero-shot CLIP, only evaluate) with the trainer on `spec`.
    Train,
    /// Evaluate the context learned by cell `model` on `spec.dataset` (domain
    /// generalisation); runs after that cell, with `spec.evaluate_context` pointing at it.
    Evaluate { model: String },
    /// Encode the test features (and zero-shot text features) that the cells of one dataset,
    /// weights file and precision read, before them (`spec` names what to encode).
    Features,
}

/// The id (and output directory name) of the feature cell for `spec`.
pub fn features_id(spec: &RunSpec) -> String {
    format!("features-{}", spec.hash())
}

/// One resolved unit of work.
#[derive(Debug, Clone)]
pub struct Cell {
    /// `spec.hash()` (`features-<hash>` for feature cells): also the name of the cell's output
    /// directory.
    pub id: String,
    pub protocol: Protocol,
    pub kind: CellKind,
    pub spec: RunSpec,
    /// Ids of the cells that must finish first.
    pub deps: Vec<String>,
    /// The same cells as indices into the grid's `cells` (set when the grid is ordered).
    pub after: Vec<usize>,
    /// Relative cost (see `cost`).
    pub cost: f64,
    /// `<output_dir>/<id>`.
    pub out_dir: PathBuf,
}

impl Cell {
    /// Cells with the same value see the same training views (see `subpt_trainer::views`):
    /// the scheduler keeps them on one rank, where the views are in memory.
    pub fn views_group(&self) -> Option<String> {
        let s = &self.spec;
        (self.kind == CellKind::Train && s.method.learns()).then(|| {
            subpt_trainer::digest::digest_json(&(
                &s.weights,
                s.precision,
                &s.dataset,
                &s.root,
                &s.subsample,
                s.shots,
                s.seed,
                s.batch_size,
                &s.augment,
            ))
        })
    }
}

/// Paths given on the command line in place of the grid file's (relative to the working
/// directory, as command-line paths are): the flags of `run` and `slurm`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PathOverrides {
    /// Output directory; replaces the grid's `output_dir`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Backbone weights; replace the grid's `weights` (all of them, if it lists several).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Dataset root; replaces the grid's `data_root`.
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Feature cache; replaces the grid's `cache_dir`.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

impl PathOverrides {
    fn apply(&self, cfg: &mut GridConfig) {
        let cwd = Path::new(".");
        let abs = |p: &PathBuf| config::resolve(cwd, &p.to_string_lossy());
        if let Some(o) = &self.out {
            cfg.output_dir = abs(o);
        }
        if let Some(w) = &self.weights {
            cfg.weights = vec![abs(w)];
        }
        if let Some(d) = &self.data_root {
            cfg.data_root = abs(d);
        }
        if let Some(c) = &self.cache {
            cfg.cache_dir = Some(abs(c));
        }
    }
}

/// An expanded grid: cells in topological order (every cell after its dependencies).
#[derive(Debug, Clone)]
pub struct Grid {
    pub name: String,
    pub source: PathBuf,
    pub output_dir: PathBuf,
    pub cells: Vec<Cell>,
}

impl Grid {
    /// Reads, validates and expands a grid file, with the command line's path overrides.
    pub fn load(path: &Path, paths: &PathOverrides) -> Result<Grid, GridError> {
        let mut cfg = GridConfig::load(path)?;
        paths.apply(&mut cfg);
        expand(&cfg)
    }

    /// Keeps file digests across runs in the grid's feature cache (`digest::use_index`), so a
    /// rerun's done-check stats each image instead of reading it.
    pub fn use_digest_index(&self) {
        if let Some(c) = self.cells.first() {
            let ix = c.spec.cache_dir.join(subpt_trainer::digest::INDEX_FILE);
            subpt_trainer::digest::use_index(&ix);
        }
    }

    pub fn cell(&self, id: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.id == id)
    }

    pub fn total_cost(&self) -> f64 {
        self.cells.iter().map(|c| c.cost).sum()
    }
}

/// Orders cells so each comes after its dependencies, keeping the given order otherwise
/// (Kahn's algorithm, always taking the earliest ready cell).
pub fn topological_order(name: &str, cells: Vec<Cell>) -> Result<Vec<Cell>, GridError> {
    use std::collections::HashMap;
    let index: HashMap<String, usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    let mut pending: Vec<usize> = cells.iter().map(|c| c.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); cells.len()];
    for (i, c) in cells.iter().enumerate() {
        for d in &c.deps {
            match index.get(d) {
                Some(&j) => dependents[j].push(i),
                None => {
                    return Err(GridError::Dangling {
                        name: name.into(),
                        cell: c.id.clone(),
                        dep: d.clone(),
                    })
                }
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..cells.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(cells.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            pending[k] -= 1;
            if pending[k] == 0 {
                ready.insert(k);
            }
        }
    }
    if order.len() < cells.len() {
        let stuck = (0..cells.len()).find(|&i| pending[i] > 0).unwrap_or(0);
        return Err(GridError::Cycle {
            name: name.into(),
            cell: cells[stuck].id.clone(),
        });
    }
    let mut position = vec![0; cells.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut slots: Vec<Option<Cell>> = cells.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| {
            let mut c = slots[i].take().expect("each index once");
            c.after = c.deps.iter().map(|d| position[index[d]]).collect();
            c
        })
        .collect())
}

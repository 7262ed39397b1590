//! Executes a grid in one process, in dependency order, with a result store that makes reruns
//! resume: a cell is done only when its `result.json` parses and carries its own spec and hash.
//! Failed cells are recorded (`failure.json`) and their dependants skipped; the rest go on.
use super::progress::{Progress, ProgressMode};
use super::{features_id, Cell, CellKind, Grid};
use std::collections::BTreeMap;
use std::path::Path;
use subpt_trainer::cache::FeatureCache;
use subpt_trainer::comm::{Communicator, Single};
use subpt_trainer::engine::group::panic_message;
use subpt_trainer::engine::run::{run, RunResult};
use subpt_trainer::engine::warm::{encode_test_features, FeaturesResult};
use tch::Device;

/// What happened to each cell of a pass over the grid.
#[derive(Debug, Default)]
pub struct Summary {
    pub already_done: Vec<String>,
    pub ran: Vec<String>,
    pub failed: BTreeMap<String, String>,
    /// Cell id -> why it did not run (a failed dependency, or not runnable yet).
    pub skipped: BTreeMap<String, String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// Whether `dir` holds a finished result of exactly `cell`.
pub fn is_done(cell: &Cell) -> bool {
    if cell.kind == CellKind::Features {
        let Ok(text) = std::fs::read_to_string(cell.out_dir.join("features.json")) else {
            return false;
        };
        // Done only while the features are still in the cache the cells will read.
        let cache = FeatureCache::new(&cell.spec.cache_dir);
        return match serde_json::from_str::<FeaturesResult>(&text) {
            Ok(r) => {
                r.spec == cell.spec
                    && features_id(&r.spec) == cell.id
                    && r.sets.iter().all(|s| cache.has_entry(&s.entry))
            }
            Err(_) => false,
        };
    }
    let Ok(text) = std::fs::read_to_string(cell.out_dir.join("result.json")) else {
        return false;
    };
    match serde_json::from_str::<RunResult>(&text) {
        Ok(r) => r.spec_hash == cell.id && r.spec == cell.spec && r.spec.hash() == cell.id,
        Err(_) => false,
    }
}

fn write_json(path: &Path, v: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    subpt_trainer::io::write_atomic(path, text.as_bytes())
}

/// Trains one cell with the data-parallel group `comm` (every rank of it calls this); its
/// rank 0 stores the result, or records why the cell failed in `failure.json`.
pub fn run_cell(cell: &Cell, device: Device, comm: &dyn Communicator) -> Result<(), String> {
    let writer = comm.rank() == 0;
    if writer {
        let _ = std::fs::remove_file(cell.out_dir.join("failure.json"));
    }
    let work = || match cell.kind {
        // One rank encodes; the group's others have nothing to share it with.
        CellKind::Features if !writer => Ok(()),
        CellKind::Features => std::fs::create_dir_all(&cell.out_dir)
            .map_err(|e| format!("{}: {e}", cell.out_dir.display()))
            .and_then(|()| encode_test_features(&cell.spec, device).map_err(|e| e.to_string()))
            .and_then(|r| {
                write_json(&cell.out_dir.join("features.json"), &r).map_err(|e| e.to_string())
            }),
        _ => run(&cell.spec, &cell.out_dir, device, comm)
            .map_err(|e| e.to_string())
            .and_then(|r| match writer {
                true => {
                    write_json(&cell.out_dir.join("result.json"), &r).map_err(|e| e.to_string())
                }
                false => Ok(()),
            }),
    };
    // A panic (libtorch reports out-of-memory and shape errors that way) fails this cell only.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|p| Err(format!("internal error: {}", panic_message(p.as_ref()))));
    match (&outcome, writer) {
        (Err(e), true) => {
            let _ = write_json(
                &cell.out_dir.join("failure.json"),
                &serde_json::json!({ "id": cell.id, "error": e, "spec": cell.spec }),
            );
        }
        // The leader records its own account; this rank's may be the cause.
        (Err(e), false) => {
            tracing::error!(cell = %cell.id, "rank {} of the cell's group: {e}", comm.rank())
        }
        (Ok(()), _) => {}
    }
    outcome
}

/// Runs every cell not yet done, in order, on `device`.
pub fn execute(grid: &Grid, device: Device, mode: ProgressMode) -> Summary {
    let mut s = Summary::default();
    let done: Vec<bool> = grid.cells.iter().map(is_done).collect();
    let mut progress = Progress::new(grid, vec!["this process".into()], &done, mode, false);
    for (cell, &done) in grid.cells.iter().zip(&done) {
        if done {
            s.already_done.push(cell.id.clone());
            continue;
        }
        if let Some(d) = cell
            .deps
            .iter()
            .find(|d| s.failed.contains_key(*d) || s.skipped.contains_key(*d))
        {
            s.skipped
                .insert(cell.id.clone(), format!("dependency {d} did not finish"));
            progress.skip(cell);
            continue;
        }
        progress.start(0, cell);
        let outcome = run_cell(cell, device, &Single);
        progress.finish(
            0,
            cell,
            outcome.as_ref().map(|_| ()).map_err(|e| e.as_str()),
        );
        match outcome {
            Ok(()) => s.ran.push(cell.id.clone()),
            Err(e) => {
                s.failed.insert(cell.id.clone(), e);
            }
        }
    }
    progress.close();
    s
}

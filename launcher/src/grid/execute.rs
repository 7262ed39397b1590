//! Executes a grid in one process, in dependency order, with a result store that makes reruns
//! resume: a cell is done only when its `result.json` parses and carries its own spec and hash.
//! Failed cells are recorded (`failure.json`) and their dependants skipped; the rest go on.
use super::{Cell, Grid};
use std::collections::BTreeMap;
use std::path::Path;
use subpt_trainer::comm::Single;
use subpt_trainer::engine::run::{run, RunResult};
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

/// Trains one cell and stores its result, or records why it failed in `failure.json`.
pub fn run_cell(cell: &Cell, device: Device) -> Result<(), String> {
    let _ = std::fs::remove_file(cell.out_dir.join("failure.json"));
    let outcome = run(&cell.spec, &cell.out_dir, device, &Single)
        .map_err(|e| e.to_string())
        .and_then(|r| write_json(&cell.out_dir.join("result.json"), &r).map_err(|e| e.to_string()));
    if let Err(e) = &outcome {
        tracing::error!(cell = %cell.id, "failed: {e}");
        let _ = write_json(
            &cell.out_dir.join("failure.json"),
            &serde_json::json!({ "id": cell.id, "error": e, "spec": cell.spec }),
        );
    }
    outcome
}

/// Runs every cell not yet done, in order, on `device`.
pub fn execute(grid: &Grid, device: Device) -> Summary {
    let mut s = Summary::default();
    for (i, cell) in grid.cells.iter().enumerate() {
        let tag = format!(
            "[{}/{}] {} {} {}-shot seed {}",
            i + 1,
            grid.cells.len(),
            cell.spec.dataset,
            cell.spec.method,
            cell.spec.shots,
            cell.spec.seed
        );
        if let Some(d) = cell
            .deps
            .iter()
            .find(|d| s.failed.contains_key(*d) || s.skipped.contains_key(*d))
        {
            s.skipped
                .insert(cell.id.clone(), format!("dependency {d} did not finish"));
            continue;
        }
        if is_done(cell) {
            s.already_done.push(cell.id.clone());
            continue;
        }
        tracing::info!(cell = %cell.id, "{tag}: running");
        match run_cell(cell, device) {
            Ok(()) => s.ran.push(cell.id.clone()),
            Err(e) => {
                s.failed.insert(cell.id.clone(), e);
            }
        }
    }
    s
}

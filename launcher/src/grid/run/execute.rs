//! Executes a grid in one process, in dependency order, over the cell store (`store`): reruns
//! resume, as a cell is done only while its stored result's identity is the current one.
//! Failed cells are recorded and their dependants skipped; the rest go on.
pub use crate::grid::dispatch::Summary;
use crate::grid::progress::{Progress, ProgressMode};
use crate::grid::{Cell, CellKind, Grid};
use subpt_trainer::cache::FeatureCache;
use subpt_trainer::comm::{Communicator, Single};
use subpt_trainer::engine::inputs::{DataMemo, Identity};
use subpt_trainer::engine::result::RunResult;
use subpt_trainer::engine::run::run;
use subpt_trainer::engine::warm::{encode_test_features, FeaturesResult};
use subpt_trainer::store::{self, CellDir};
use tch::Device;

/// The file in a cell's directory that says it is done: its features record or its result.
pub(crate) fn record_of(cell: &Cell) -> &'static str {
    match cell.kind {
        CellKind::Features => store::FEATURES,
        _ => store::RESULT,
    }
}

/// Whether `cell`'s directory holds a result of what the cell would compute now: the
/// identity it recorded (spec, numerics version, digests of weights, item lists and trained
/// files) equals the current one. A feature cell is done only while its features are still in
/// the cache its dependants will read.
pub(crate) fn holds_current(cell: &Cell, memo: &mut DataMemo) -> bool {
    let dir = CellDir::new(&cell.out_dir);
    let record = record_of(cell);
    // Without a record there is nothing to compare: a fresh grid's cells hash their inputs
    // when they run, not all of them up front.
    if !dir.file(record).exists() {
        return false;
    }
    let Ok(expected) = Identity::expected(&cell.spec, memo) else {
        return false;
    };
    if cell.kind != CellKind::Features {
        return match RunResult::check_done(&dir, &expected) {
            Ok(_) => true,
            Err(why) => {
                tracing::info!(cell = %cell.id, "stored result not current, redone: {why}");
                false
            }
        };
    }
    let cache = FeatureCache::new(&cell.spec.cache_dir);
    dir.holds(store::FEATURES, &expected)
        && dir
            .read_json::<FeaturesResult>(store::FEATURES)
            .is_some_and(|r| r.sets.iter().all(|s| cache.has_entry(&s.entry)))
}

/// Which cells (in the grid's topological order) are done. A cell whose training dependency
/// is not done is not done either: the trajectory or context it read will be made again.
/// Feature cells do not count here: their cache entries are content-addressed, so the cells
/// that read them are unaffected by where (or whether) they are cached now.
pub fn done_cells(grid: &Grid) -> Vec<bool> {
    let mut memo = DataMemo::default();
    let mut done = vec![false; grid.cells.len()];
    for (i, c) in grid.cells.iter().enumerate() {
        let deps = c
            .after
            .iter()
            .all(|&j| grid.cells[j].kind == CellKind::Features || done[j]);
        done[i] = deps && holds_current(c, &mut memo);
    }
    done
}

/// Trains one cell with the data-parallel group `comm` (every rank of it calls this); its
/// rank 0 stores the result, or records why the cell failed in the failure record.
pub fn run_cell(cell: &Cell, device: Device, comm: &dyn Communicator) -> Result<(), String> {
    let writer = comm.rank() == 0;
    let dir = CellDir::new(&cell.out_dir);
    if writer {
        dir.clear_failure();
    }
    let work = || match cell.kind {
        // One rank encodes; the group's others have nothing to share it with.
        CellKind::Features if !writer => Ok(()),
        CellKind::Features => dir
            .create()
            .map_err(|e| format!("{}: {e}", cell.out_dir.display()))
            .and_then(|()| encode_test_features(&cell.spec, device).map_err(|e| e.to_string()))
            .and_then(|r| {
                dir.write_json(store::FEATURES, &r)
                    .map_err(|e| e.to_string())
            }),
        _ => run(&cell.spec, &cell.out_dir, device, comm)
            .map_err(|e| e.to_string())
            .and_then(|r| match writer {
                true => dir.write_json(store::RESULT, &r).map_err(|e| e.to_string()),
                false => Ok(()),
            }),
    };
    // The trainer turns a cell's panics into errors (`engine::group::guarded`).
    let outcome = work();
    match (&outcome, writer) {
        (Err(e), true) => dir.write_failure(&cell.id, e, &cell.spec),
        // The leader records its own account; this rank's may be the cause.
        (Err(e), false) => {
            tracing::error!(cell = %cell.id, "rank {} of the cell's group: {e}", comm.rank())
        }
        (Ok(()), _) => {}
    }
    outcome
}

/// Runs every cell not yet done on `device`, in this process: the scheduler with one worker.
pub fn execute(grid: &Grid, device: Device, mode: ProgressMode) -> Summary {
    crate::grid::interrupt::install();
    grid.use_digest_index();
    crate::grid::dispatch::mark_pass_start(grid);
    let done = done_cells(grid);
    let progress = Progress::new(grid, vec!["this process".into()], &done, mode, false);
    let mut d = crate::grid::dispatch::Dispatcher::new(grid, &done, progress);
    loop {
        match d.next(0) {
            Some(i) => {
                let outcome = run_cell(&grid.cells[i], device, &Single);
                d.record(0, i, outcome.err());
            }
            None if d.finished() => break,
            // Cells other processes hold: wait for them.
            None => std::thread::sleep(crate::grid::dispatch::POLL),
        }
    }
    d.progress.close();
    d.summary()
}

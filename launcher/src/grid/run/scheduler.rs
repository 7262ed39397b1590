//! MPI fan-out of a grid. The world splits into data-parallel groups of `dp` consecutive ranks
//! (groups of one by default); each group trains one cell at a time, its rank 0 (the leader)
//! asking for work. World rank 0 runs a dispatcher thread that hands ready cells (all
//! dependencies done) to whichever leader asks, longest estimate first, while its main thread
//! works in group 0 like every other rank. Results go to the shared output directory; the
//! dispatcher learns whether a cell succeeded (with the error text when not), and skips the
//! dependants of failed cells.
use crate::grid::dispatch::Dispatcher;
use crate::grid::dispatch::Summary;
use crate::grid::execute::{done_cells, run_cell};
use crate::grid::progress::{Progress, ProgressMode};
use crate::grid::Grid;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Color, SimpleCommunicator};
use mpi::traits::{Communicator as _, Root};
use std::sync::mpsc::{channel, Receiver, Sender};
use subpt_trainer::comm::{data_parallel, CommError};
use tch::Device;

const REQUEST: i32 = 11;
const ASSIGN: i32 = 12;
/// Reply meaning "no more work".
const STOP: i64 = -1;

/// A worker's report: the cell it just finished (-1 for none) and, if it failed, why.
type Report = (i64, Option<String>);

/// A report on the wire: the cell (8 bytes, little-endian), then the error text if any.
fn encode(r: &Report) -> Vec<u8> {
    let mut b = r.0.to_le_bytes().to_vec();
    if let Some(e) = &r.1 {
        b.push(1);
        b.extend_from_slice(e.as_bytes());
    }
    b
}

fn decode(b: &[u8]) -> Report {
    let mut cell = [0u8; 8];
    cell.copy_from_slice(&b[..8]);
    let error = (b.len() > 8).then(|| String::from_utf8_lossy(&b[9..]).into_owned());
    (i64::from_le_bytes(cell), error)
}

/// Rank 0's dispatcher loop: serves remote leaders over MPI and group 0's leader (this
/// process) through channels, until every cell is settled and every leader has been told to
/// stop.
fn dispatch(
    grid: &Grid,
    done: &[bool],
    leaders: Vec<usize>,
    names: Vec<String>,
    mode: ProgressMode,
    local: (Receiver<Report>, Sender<i64>),
) -> Summary {
    let world = SimpleCommunicator::world();
    let progress = Progress::new(grid, names, done, mode, true);
    let workers = leaders.len();
    let mut d = Dispatcher::new(grid, done, progress);
    let worker = |leader: usize| {
        leaders
            .iter()
            .position(|&l| l == leader)
            .expect("reports come from group leaders")
    };
    let record = |d: &mut Dispatcher, leader: usize, (cell, error): Report| {
        if cell >= 0 {
            d.record(worker(leader), cell as usize, error);
        }
    };
    let mut waiting: Vec<usize> = Vec::new();
    let mut stopped = 0;
    let (local_reports, local_assign) = local;
    while stopped < workers {
        let mut busy = false;
        while let Some(probed) = world
            .any_process()
            .immediate_matched_probe_with_tag(REQUEST)
        {
            let (v, status) = probed.matched_receive_vec::<u8>();
            let from = status.source_rank() as usize;
            record(&mut d, from, decode(&v));
            waiting.push(from);
            busy = true;
        }
        while let Ok(r) = local_reports.try_recv() {
            record(&mut d, 0, r);
            waiting.push(0);
            busy = true;
        }
        let mut still = Vec::new();
        for w in waiting.drain(..) {
            let reply = match d.next(worker(w)) {
                Some(i) => i as i64,
                None if d.finished() => STOP,
                None => {
                    still.push(w);
                    continue;
                }
            };
            if reply == STOP {
                stopped += 1;
            }
            if w == 0 {
                let _ = local_assign.send(reply);
            } else {
                world
                    .process_at_rank(w as i32)
                    .send_with_tag(&[reply][..], ASSIGN);
            }
            busy = true;
        }
        waiting = still;
        if !busy {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    d.progress.close();
    d.summary()
}

/// How the world splits into data-parallel groups of `dp` consecutive ranks (the last group
/// may be smaller): each group's leader and its name for progress lines.
fn groups(size: usize, dp: usize) -> Vec<(usize, String)> {
    (0..size)
        .step_by(dp)
        .map(|first| {
            let last = (first + dp).min(size) - 1;
            let name = match first == last {
                true => format!("rank {first}"),
                false => format!("ranks {first}-{last}"),
            };
            (first, name)
        })
        .collect()
}

/// Runs the grid over all ranks of `world` in data-parallel groups of `dp` ranks; returns the
/// summary on rank 0 only. Fails when the group's communicator cannot be set up (the caller
/// aborts the job: the other ranks would wait for this one).
pub fn execute_mpi(
    grid: &Grid,
    device: Device,
    world: &SimpleCommunicator,
    dp: usize,
    mode: ProgressMode,
) -> Result<Option<Summary>, CommError> {
    let rank = world.rank() as usize;
    let size = world.size() as usize;
    let dp = dp.clamp(1, size);
    // Rank 0 checks which cells are done, digesting every input file on the way, and hands
    // the digests to every rank so no rank reads a weights file again to digest it.
    if rank == 0 {
        crate::grid::interrupt::install();
    }
    grid.use_digest_index();
    let done = (rank == 0).then(|| {
        crate::grid::dispatch::mark_pass_start(grid);
        done_cells(grid)
    });
    let mut memo = match rank {
        0 => subpt_trainer::digest::export_memo().into_bytes(),
        _ => Vec::new(),
    };
    let mut len = memo.len() as u64;
    world.process_at_rank(0).broadcast_into(&mut len);
    memo.resize(len as usize, 0);
    world.process_at_rank(0).broadcast_into(&mut memo[..]);
    if rank != 0 {
        subpt_trainer::digest::import_memo(&String::from_utf8_lossy(&memo));
    }
    let group = world
        .split_by_color(Color::with_value((rank / dp) as i32))
        .expect("every rank has a colour");
    // The cell numbers travel on their own communicator, apart from the training collectives.
    let cells = group.duplicate();
    let comm = data_parallel(group, device)?;
    // Every rank of a group runs the cells its leader is handed, until told to stop.
    let work = |mut ask: Box<dyn FnMut(Report) -> i64 + '_>| {
        let mut last: Report = (-1, None);
        loop {
            let mut cell = if comm.rank() == 0 { ask(last) } else { STOP };
            cells.process_at_rank(0).broadcast_into(&mut cell);
            if cell == STOP {
                break;
            }
            let outcome = run_cell(&grid.cells[cell as usize], device, comm.as_ref());
            last = (cell, outcome.err());
        }
    };
    if rank == 0 {
        let (report_tx, report_rx) = channel::<Report>();
        let (assign_tx, assign_rx) = channel::<i64>();
        let (leaders, names) = groups(size, dp).into_iter().unzip();
        let summary = std::thread::scope(|s| {
            let done = done.as_deref().expect("rank 0 checked");
            let dispatcher =
                s.spawn(|| dispatch(grid, done, leaders, names, mode, (report_rx, assign_tx)));
            work(Box::new(|last| match report_tx.send(last) {
                Ok(()) => assign_rx.recv().unwrap_or(STOP),
                Err(_) => STOP,
            }));
            dispatcher.join().unwrap_or_else(|p| {
                // The other leaders wait for their next cell: end the job, not leave it hanging.
                let why = subpt_trainer::engine::group::panic_message(p.as_ref());
                crate::grid::progress::print_error(format_args!(
                    "the grid dispatcher failed: {why}"
                ));
                world.abort(1)
            })
        });
        return Ok(Some(summary));
    }
    let root = world.process_at_rank(0);
    work(Box::new(|last| {
        root.send_with_tag(&encode(&last)[..], REQUEST);
        root.receive_vec_with_tag::<i64>(ASSIGN).0[0]
    }));
    Ok(None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_round_trip() {
        for r in [
            (-1, None),
            (7, None),
            (3, Some("diverged: ctx is not finite é".to_string())),
        ] {
            assert_eq!(super::decode(&super::encode(&r)), r);
        }
    }

    #[test]
    fn groups_take_consecutive_ranks() {
        let g = super::groups(5, 2);
        assert_eq!(
            g,
            vec![
                (0, "ranks 0-1".to_string()),
                (2, "ranks 2-3".to_string()),
                (4, "rank 4".to_string())
            ]
        );
        assert_eq!(super::groups(3, 1).len(), 3);
    }
}

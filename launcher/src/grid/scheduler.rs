//! MPI fan-out of a grid. Rank 0 runs a dispatcher thread that hands ready cells (all
//! dependencies done) to whichever rank asks, longest estimate first, while rank 0's main thread
//! works like every other rank. Results go to the shared output directory; the dispatcher only
//! learns whether a cell succeeded, and skips the dependants of failed cells.
use super::execute::{is_done, run_cell, Summary};
use super::Grid;
use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::SimpleCommunicator;
use mpi::traits::Communicator as _;
use std::sync::mpsc::{channel, Receiver, Sender};
use tch::Device;

const REQUEST: i32 = 11;
const ASSIGN: i32 = 12;
/// Reply meaning "no more work".
const STOP: i64 = -1;

#[derive(Clone, Debug, PartialEq)]
enum State {
    Pending,
    Running,
    Done,
    AlreadyDone,
    Failed(String),
    Skipped(String),
}

/// A worker's report: the cell it just finished (if any) and whether it succeeded.
type Report = (i64, bool);

struct Dispatcher<'a> {
    grid: &'a Grid,
    state: Vec<State>,
}

impl Dispatcher<'_> {
    fn index_of(&self, id: &str) -> Option<usize> {
        self.grid.cells.iter().position(|c| c.id == id)
    }

    fn record(&mut self, (cell, ok): Report) {
        if cell < 0 {
            return;
        }
        let c = &self.grid.cells[cell as usize];
        self.state[cell as usize] = if ok {
            State::Done
        } else {
            let why = std::fs::read_to_string(c.out_dir.join("failure.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| "failed (no failure.json)".into());
            State::Failed(why)
        };
    }

    /// Skips pending cells whose dependencies failed or were skipped.
    fn propagate(&mut self) {
        for i in 0..self.state.len() {
            if self.state[i] != State::Pending {
                continue;
            }
            for d in &self.grid.cells[i].deps {
                if let Some(j) = self.index_of(d) {
                    if matches!(self.state[j], State::Failed(_) | State::Skipped(_)) {
                        self.state[i] = State::Skipped(format!("dependency {d} did not finish"));
                        break;
                    }
                }
            }
        }
    }

    /// The ready cell with the largest cost estimate, marked running.
    fn next(&mut self) -> Option<usize> {
        self.propagate();
        let ready = (0..self.state.len())
            .filter(|&i| self.state[i] == State::Pending)
            .filter(|&i| {
                self.grid.cells[i].deps.iter().all(|d| {
                    self.index_of(d)
                        .is_none_or(|j| matches!(self.state[j], State::Done | State::AlreadyDone))
                })
            })
            .max_by(|&a, &b| self.grid.cells[a].cost.total_cmp(&self.grid.cells[b].cost))?;
        self.state[ready] = State::Running;
        Some(ready)
    }

    fn finished(&self) -> bool {
        !self
            .state
            .iter()
            .any(|s| matches!(s, State::Pending | State::Running))
    }

    fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for (c, st) in self.grid.cells.iter().zip(&self.state) {
            match st {
                State::Done => s.ran.push(c.id.clone()),
                State::AlreadyDone => s.already_done.push(c.id.clone()),
                State::Failed(e) => {
                    s.failed.insert(c.id.clone(), e.clone());
                }
                State::Skipped(w) => {
                    s.skipped.insert(c.id.clone(), w.clone());
                }
                State::Pending | State::Running => {
                    s.skipped.insert(c.id.clone(), "never scheduled".into());
                }
            }
        }
        s
    }
}

/// Rank 0's dispatcher loop: serves remote ranks over MPI and rank 0's own worker through
/// channels, until every cell is settled and every worker has been told to stop.
fn dispatch(grid: &Grid, size: usize, local: (Receiver<Report>, Sender<i64>)) -> Summary {
    let world = SimpleCommunicator::world();
    let mut d = Dispatcher {
        grid,
        state: grid
            .cells
            .iter()
            .map(|c| {
                if is_done(c) {
                    State::AlreadyDone
                } else {
                    State::Pending
                }
            })
            .collect(),
    };
    let mut waiting: Vec<usize> = Vec::new();
    let mut stopped = 0;
    let (local_reports, local_assign) = local;
    while stopped < size {
        let mut busy = false;
        while let Some(probed) = world
            .any_process()
            .immediate_matched_probe_with_tag(REQUEST)
        {
            let (v, status) = probed.matched_receive_vec::<i64>();
            d.record((v[0], v[1] == 1));
            waiting.push(status.source_rank() as usize);
            busy = true;
        }
        while let Ok(r) = local_reports.try_recv() {
            d.record(r);
            waiting.push(0);
            busy = true;
        }
        let mut still = Vec::new();
        for w in waiting.drain(..) {
            let reply = match d.next() {
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
    d.summary()
}

/// Runs the grid over all ranks of `world`; returns the summary on rank 0 only.
pub fn execute_mpi(grid: &Grid, device: Device, world: &SimpleCommunicator) -> Option<Summary> {
    let rank = world.rank() as usize;
    let size = world.size() as usize;
    if rank == 0 {
        let (report_tx, report_rx) = channel::<Report>();
        let (assign_tx, assign_rx) = channel::<i64>();
        std::thread::scope(|s| {
            let dispatcher = s.spawn(|| dispatch(grid, size, (report_rx, assign_tx)));
            let mut last: Report = (-1, false);
            loop {
                if report_tx.send(last).is_err() {
                    break;
                }
                let Ok(cell) = assign_rx.recv() else { break };
                if cell == STOP {
                    break;
                }
                last = (cell, run_cell(&grid.cells[cell as usize], device).is_ok());
            }
            Some(dispatcher.join().expect("dispatcher thread"))
        })
    } else {
        let root = world.process_at_rank(0);
        let mut last: Report = (-1, false);
        loop {
            root.send_with_tag(&[last.0, i64::from(last.1)][..], REQUEST);
            let (v, _) = root.receive_vec_with_tag::<i64>(ASSIGN);
            if v[0] == STOP {
                break;
            }
            last = (v[0], run_cell(&grid.cells[v[0] as usize], device).is_ok());
        }
        None
    }
}

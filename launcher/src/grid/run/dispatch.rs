//! The one scheduler: which cell of a grid runs next on which worker, what each cell came to,
//! and the summary. The single-process run is this with one local worker (`execute`); the MPI
//! run (`scheduler`) is this behind a dispatcher thread that serves group leaders.
//!
//! A worker is handed the ready cell (every dependency done) that sees the same training views
//! as its last cell if there is one (they are in that process's memory), else one whose views no
//! other worker holds, the largest cost estimate first. A failed or skipped cell skips its
//! dependants; the rest go on.
use crate::grid::progress::Progress;
use crate::grid::Grid;
use std::collections::{BTreeMap, HashMap, HashSet};

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

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum State {
    Pending,
    Running,
    Done,
    AlreadyDone,
    Failed(String),
    Skipped(String),
}

pub(crate) struct Dispatcher<'a> {
    pub(crate) grid: &'a Grid,
    pub(crate) state: Vec<State>,
    pub(crate) progress: Progress,
    /// Each cell's training-views group, and the group each worker ran last.
    views: Vec<Option<String>>,
    last_views: HashMap<usize, String>,
    /// Set by the first cell that failed for want of disk space: no cell starts after it,
    /// since every one would train to the end and then fail to save.
    full: Option<String>,
}

/// Whether a cell's error is the file system running out of space.
pub(crate) fn out_of_space(error: &str) -> bool {
    error.contains("os error 28") || error.contains("os error 122")
}

impl<'a> Dispatcher<'a> {
    /// `done`: the cells already done (see `execute::done_cells`).
    pub(crate) fn new(grid: &'a Grid, done: &[bool], progress: Progress) -> Self {
        crate::grid::interrupt::set_counts(done.iter().filter(|d| **d).count(), grid.cells.len());
        let state = done
            .iter()
            .map(|&d| match d {
                true => State::AlreadyDone,
                false => State::Pending,
            })
            .collect();
        Dispatcher {
            grid,
            state,
            progress,
            views: grid.cells.iter().map(|c| c.views_group()).collect(),
            last_views: HashMap::new(),
            full: None,
        }
    }

    /// Records how `cell` ended on `worker`: `None` for success, else why it failed.
    pub(crate) fn record(&mut self, worker: usize, cell: usize, error: Option<String>) {
        let c = &self.grid.cells[cell];
        self.state[cell] = match error {
            None => {
                self.progress.finish(worker, c, Ok(()));
                crate::grid::interrupt::cell_done();
                State::Done
            }
            Some(why) => {
                if out_of_space(&why) && self.full.is_none() {
                    let dir = &self.grid.output_dir;
                    let free = crate::grid::cost::free_bytes(dir)
                        .map_or("unknown".to_string(), |b| format!("{} MB", b >> 20));
                    let finished: Vec<bool> = self
                        .state
                        .iter()
                        .map(|s| matches!(s, State::Done | State::AlreadyDone))
                        .collect();
                    let need = crate::grid::cost::disk_estimate(self.grid, &finished) >> 20;
                    let msg = format!(
                        "no space left on the device (output {}, free {free}; the rest of the \
                         grid writes about {need} MB there and in its cache): no further cell starts; free \
                         space and rerun, finished cells are kept",
                        dir.display()
                    );
                    crate::grid::progress::print_error(format_args!("{msg}"));
                    self.full = Some(msg);
                }
                self.progress.finish(worker, c, Err(&why));
                State::Failed(why)
            }
        };
    }

    /// Skips pending cells whose dependencies failed or were skipped (in topological order,
    /// so a skip reaches every cell downstream in one pass).
    fn propagate(&mut self) {
        for i in 0..self.state.len() {
            if self.state[i] != State::Pending {
                continue;
            }
            let cell = &self.grid.cells[i];
            let failed = cell
                .after
                .iter()
                .find(|&&j| matches!(self.state[j], State::Failed(_) | State::Skipped(_)));
            if let Some(&j) = failed {
                let why = format!(
                    "dependency {} did not finish",
                    crate::grid::progress::describe(&self.grid.cells[j])
                );
                self.state[i] = State::Skipped(why);
                self.progress.skip(cell);
            }
        }
    }

    /// The next cell for `worker`, marked running; `None` when none is ready now.
    pub(crate) fn next(&mut self, worker: usize) -> Option<usize> {
        self.propagate();
        if let Some(why) = &self.full {
            let why = format!("not started: {why}");
            for i in 0..self.state.len() {
                if self.state[i] == State::Pending {
                    self.state[i] = State::Skipped(why.clone());
                    self.progress.skip(&self.grid.cells[i]);
                }
            }
            return None;
        }
        let last = self.last_views.get(&worker);
        let held: HashSet<&String> = self
            .last_views
            .iter()
            .filter(|(w, _)| **w != worker)
            .map(|(_, g)| g)
            .collect();
        let rank = |i: usize| {
            let g = self.views[i].as_ref();
            let warm = last.is_some() && g == last;
            (warm, !g.is_some_and(|g| held.contains(g)))
        };
        let ready = (0..self.state.len())
            .filter(|&i| self.state[i] == State::Pending)
            .filter(|&i| {
                self.grid.cells[i]
                    .after
                    .iter()
                    .all(|&j| matches!(self.state[j], State::Done | State::AlreadyDone))
            })
            .max_by(|&a, &b| {
                (rank(a), self.grid.cells[a].cost)
                    .partial_cmp(&(rank(b), self.grid.cells[b].cost))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })?;
        if let Some(g) = &self.views[ready] {
            self.last_views.insert(worker, g.clone());
        }
        self.state[ready] = State::Running;
        self.progress.start(worker, &self.grid.cells[ready]);
        Some(ready)
    }

    /// Every cell settled (none pending or running).
    pub(crate) fn finished(&self) -> bool {
        !self
            .state
            .iter()
            .any(|s| matches!(s, State::Pending | State::Running))
    }

    pub(crate) fn summary(&self) -> Summary {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{config::GridConfig, expand, CellKind};

    fn grid(text: &str) -> Grid {
        let cfg = GridConfig::parse(text, std::path::Path::new("/g/grid.yaml")).unwrap();
        expand(&cfg).unwrap()
    }

    fn dispatcher(g: &Grid, workers: usize) -> Dispatcher<'_> {
        let done = vec![false; g.cells.len()];
        let names = (0..workers).map(|w| format!("w{w}")).collect();
        let progress = Progress::new(
            g,
            names,
            &done,
            crate::grid::progress::ProgressMode::Plain,
            true,
        );
        Dispatcher::new(g, &done, progress)
    }

    const TWO_SEEDS: &str = "name: t\nprotocols: [few_shot]\ndatasets: [eurosat]\nshots: [1]\n\
        seeds: [1, 2]\nmethods: [coop, coop_nfl, coop_sub]\nweights: w.pt\n\
        data_root: data\noutput_dir: out\n";

    #[test]
    fn a_worker_keeps_to_the_training_views_it_has_in_memory() {
        let g = grid(TWO_SEEDS);
        let mut d = dispatcher(&g, 2);
        let features = d.next(0).unwrap();
        assert_eq!(g.cells[features].kind, CellKind::Features);
        d.record(0, features, None);
        let first = d.next(0).unwrap();
        let other = d.next(1).unwrap();
        let seed = |i: usize| g.cells[i].spec.seed;
        assert_ne!(
            seed(first),
            seed(other),
            "the second worker starts the other seed"
        );
        for (worker, held) in [(0, first), (1, other)] {
            d.record(worker, held, None);
            let next = d.next(worker).unwrap();
            assert_eq!(seed(next), seed(held), "{}", g.cells[next].id);
        }
    }

    #[test]
    fn a_failure_skips_every_cell_downstream_and_names_it() {
        let g = grid(TWO_SEEDS);
        let mut d = dispatcher(&g, 1);
        let features = d.next(0).unwrap();
        d.record(0, features, Some("no weights".into()));
        assert_eq!(d.next(0), None);
        assert!(d.finished());
        let s = d.summary();
        assert_eq!(s.failed.len(), 1);
        assert_eq!(s.skipped.len(), g.cells.len() - 1);
        // Each skip names the dependency that did not finish: the features, or the CoOp run a
        // SubPT cell projects onto.
        assert!(
            s.skipped.values().all(|w| w.contains("did not finish")),
            "{s:?}"
        );
        let by_features = s
            .skipped
            .values()
            .filter(|w| w.contains("eurosat test features"));
        assert_eq!(by_features.count(), 4, "{s:?}");
    }

    #[test]
    fn a_full_disk_starts_no_further_cell() {
        let g = grid(TWO_SEEDS);
        let mut d = dispatcher(&g, 2);
        let features = d.next(0).unwrap();
        d.record(0, features, None);
        let a = d.next(0).unwrap();
        let b = d.next(1).unwrap();
        d.record(
            0,
            a,
            Some("out/x/trajectory.safetensors: No space left on device (os error 28)".into()),
        );
        // The running cell may finish; nothing new starts.
        assert_eq!(d.next(0), None);
        d.record(1, b, None);
        assert_eq!(d.next(1), None);
        assert!(d.finished());
        let s = d.summary();
        assert_eq!((s.ran.len(), s.failed.len()), (2, 1));
        assert_eq!(s.skipped.len(), g.cells.len() - 3);
        assert!(
            s.skipped
                .values()
                .all(|w| w.contains("no space left") && w.contains("out")),
            "{s:?}"
        );
        assert!(!out_of_space("lr 1e30 made the loss NaN"));
    }
}

//! The one scheduler: which cell of a grid runs next on which worker, what each cell came to,
//! and the summary. The single-process run is this with one local worker (`execute`); the MPI
//! run (`scheduler`) is this behind a dispatcher thread that serves group leaders.
//!
//! A worker is handed the ready cell (every dependency done) that sees the same training views
//! as its last cell if there is one (they are in that process's memory), else one whose views no
//! other worker holds, the largest cost estimate first. A failed or skipped cell skips its
//! dependants; the rest go on.
//!
//! Other processes may work in the same output directory (array tasks, a second mpirun): a
//! cell is claimed (`claim`) before it is handed out and given back when it ends; one held
//! elsewhere waits, and is looked at again every [`POLL`]: done there, it counts as done here;
//! given back without a result (its process failed or died), it is claimed here.
use crate::grid::claim::{self, file_id, Claim, Taken};
use crate::grid::progress::Progress;
use crate::grid::Grid;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use subpt_trainer::engine::inputs::DataMemo;

/// The record file each cell had when this process began its pass over the grid (taken before
/// its done-check by [`mark_pass_start`]). A record is written by renaming a new file over the
/// path, so one written since is another file (device and inode) than the one seen then: the
/// test needs no clock. Comparing times would: file times come from a coarser clock than
/// `SystemTime::now` (whole seconds on some network file systems), so a record another process
/// wrote just after this pass began can look older than the pass, and the cell ran twice.
pub(crate) struct PassStart {
    records: HashMap<PathBuf, (u64, u64)>,
}

impl PassStart {
    pub(crate) fn take(grid: &Grid) -> Self {
        let records = grid
            .cells
            .iter()
            .filter_map(|c| {
                let path = c.out_dir.join(crate::grid::execute::record_of(c));
                file_id(&path).map(|id| (path, id))
            })
            .collect();
        PassStart { records }
    }

    /// Whether the record at `path` was written since the pass began (it exists, and is not the
    /// file that was there then).
    pub(crate) fn written_since(&self, path: &Path) -> bool {
        file_id(path).is_some_and(|id| self.records.get(path) != Some(&id))
    }
}

static PASS_START: std::sync::OnceLock<PassStart> = std::sync::OnceLock::new();

/// Marks the start of this process's pass over `grid` (once; later calls keep the first).
pub(crate) fn mark_pass_start(grid: &Grid) -> &'static PassStart {
    PASS_START.get_or_init(|| PassStart::take(grid))
}

/// How often cells held by other processes are looked at again.
pub const POLL: Duration = Duration::from_millis(500);

/// What happened to each cell of a pass over the grid.
#[derive(Debug, Default)]
pub struct Summary {
    pub already_done: Vec<String>,
    pub ran: Vec<String>,
    pub failed: BTreeMap<String, String>,
    /// Cell id -> why it did not run (a failed dependency, or not runnable yet).
    pub skipped: BTreeMap<String, String>,
    /// Cells another process in the same output directory ran while this one ran.
    pub elsewhere: Vec<String>,
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
    /// Claimed by another process (its holder): waiting for it.
    Elsewhere(String),
    /// Done by another process while this one ran.
    DoneElsewhere,
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
    /// The claims this process holds, by cell.
    held: HashMap<usize, Claim>,
    memo: DataMemo,
    last_poll: Option<Instant>,
    /// The records as this pass found them: one written since was written by another process.
    pass_start: &'static PassStart,
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
            held: HashMap::new(),
            memo: DataMemo::default(),
            last_poll: None,
            pass_start: mark_pass_start(grid),
        }
    }

    /// Whether another process finished cell `i` during this pass: its record was written
    /// since the pass began and holds what the cell computes now. (A result from before the
    /// pass that the done-check did not count, because a dependency is being redone, is not.)
    fn finished_elsewhere(&mut self, i: usize) -> bool {
        let c = &self.grid.cells[i];
        let record = c.out_dir.join(crate::grid::execute::record_of(c));
        self.pass_start.written_since(&record)
            && crate::grid::execute::holds_current(c, &mut self.memo)
    }

    /// Whether a cell's dependencies are all done, here or elsewhere.
    fn ready(&self, i: usize) -> bool {
        self.state[i] == State::Pending
            && self.grid.cells[i].after.iter().all(|&j| {
                matches!(
                    self.state[j],
                    State::Done | State::AlreadyDone | State::DoneElsewhere
                )
            })
    }

    /// Looks again at the cells other processes hold (at most every [`POLL`]): done there,
    /// they are done; otherwise they are pending again, to be claimed if given back.
    fn poll_elsewhere(&mut self) {
        if self.last_poll.is_some_and(|t| t.elapsed() < POLL) {
            return;
        }
        self.last_poll = Some(Instant::now());
        for i in 0..self.state.len() {
            if !matches!(self.state[i], State::Elsewhere(_)) {
                continue;
            }
            if self.finished_elsewhere(i) {
                let c = &self.grid.cells[i];
                tracing::info!(cell = %c.id, "{}: done by another process", crate::grid::progress::describe(c));
                self.state[i] = State::DoneElsewhere;
                self.progress.skip(c);
                crate::grid::interrupt::cell_done();
            } else {
                self.state[i] = State::Pending;
            }
        }
    }

    /// Claims cell `i` for this process. `None` when it is not to run here: held elsewhere,
    /// found done after all, or its claim could not be taken (then it failed).
    fn claim(&mut self, i: usize) -> Option<Claim> {
        let c = &self.grid.cells[i];
        match claim::take(&self.grid.output_dir, &c.id) {
            Ok(Taken::Mine(held)) => {
                // Another process may have finished it between this pass's done-check and now.
                if self.finished_elsewhere(i) {
                    let c = &self.grid.cells[i];
                    self.state[i] = State::DoneElsewhere;
                    self.progress.skip(c);
                    crate::grid::interrupt::cell_done();
                    return None;
                }
                Some(held)
            }
            Ok(Taken::Elsewhere(holder)) => {
                self.state[i] = State::Elsewhere(holder);
                None
            }
            Err(e) => {
                let why = format!("its claim could not be taken: {e}");
                self.progress.skip(c);
                self.state[i] = State::Failed(why);
                None
            }
        }
    }

    /// Records how `cell` ended on `worker`: `None` for success, else why it failed.
    pub(crate) fn record(&mut self, worker: usize, cell: usize, error: Option<String>) {
        // The result (or the failure record) is written: the cell is given back.
        self.held.remove(&cell);
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
        let mut ready: Vec<usize> = (0..self.state.len()).filter(|&i| self.ready(i)).collect();
        // Ascending and stable, then from the end: among equals the last, as `max_by` takes.
        ready.sort_by(|&a, &b| {
            (rank(a), self.grid.cells[a].cost)
                .partial_cmp(&(rank(b), self.grid.cells[b].cost))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        ready.reverse();
        self.poll_elsewhere();
        for i in ready {
            // A poll may have settled it, or a claim attempt below a dependency of it.
            if !self.ready(i) {
                continue;
            }
            let Some(held) = self.claim(i) else {
                continue;
            };
            self.held.insert(i, held);
            if let Some(g) = &self.views[i] {
                self.last_views.insert(worker, g.clone());
            }
            self.state[i] = State::Running;
            self.progress.start(worker, &self.grid.cells[i]);
            return Some(i);
        }
        self.propagate();
        None
    }

    /// Every cell settled (none pending or running).
    pub(crate) fn finished(&self) -> bool {
        !self
            .state
            .iter()
            .any(|s| matches!(s, State::Pending | State::Running | State::Elsewhere(_)))
    }

    pub(crate) fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for (c, st) in self.grid.cells.iter().zip(&self.state) {
            match st {
                State::Done => s.ran.push(c.id.clone()),
                State::AlreadyDone => s.already_done.push(c.id.clone()),
                State::DoneElsewhere => s.elsewhere.push(c.id.clone()),
                State::Failed(e) => {
                    s.failed.insert(c.id.clone(), e.clone());
                }
                State::Skipped(w) => {
                    s.skipped.insert(c.id.clone(), w.clone());
                }
                State::Pending | State::Running => {
                    s.skipped.insert(c.id.clone(), "never scheduled".into());
                }
                State::Elsewhere(holder) => {
                    s.skipped
                        .insert(c.id.clone(), format!("held by another process ({holder})"));
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

    /// The grid, its output (where claims go) in a directory of its own.
    fn grid(text: &str) -> (Grid, tempfile::TempDir) {
        let cfg = GridConfig::parse(text, std::path::Path::new("/g/grid.yaml")).unwrap();
        let mut g = expand(&cfg).unwrap();
        let out = tempfile::tempdir().unwrap();
        g.output_dir = out.path().to_path_buf();
        (g, out)
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
    fn a_record_written_during_the_pass_counts_however_old_its_time_looks() {
        let (g, _out) = grid(TWO_SEEDS);
        let (a, b) = (&g.cells[0], &g.cells[1]);
        let path = |c: &crate::grid::Cell| c.out_dir.join(crate::grid::execute::record_of(c));
        for c in [a, b] {
            std::fs::create_dir_all(&c.out_dir).unwrap();
        }
        // `a` has a record from before the pass; `b` has none.
        subpt_trainer::io::write_atomic(&path(a), b"{}").unwrap();
        let pass = PassStart::take(&g);
        assert!(
            !pass.written_since(&path(a)),
            "the record the pass began with"
        );
        assert!(!pass.written_since(&path(b)), "no record at all");
        // Both written by another process, stamped an hour before the pass (a coarse or
        // skewed file clock): still written since.
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for c in [a, b] {
            subpt_trainer::io::write_atomic(&path(c), b"{}").unwrap();
            let f = std::fs::File::options().write(true).open(path(c)).unwrap();
            f.set_modified(hour_ago).unwrap();
            assert!(pass.written_since(&path(c)), "{}", c.id);
        }
    }

    #[test]
    fn a_worker_keeps_to_the_training_views_it_has_in_memory() {
        let (g, _out) = grid(TWO_SEEDS);
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
        let (g, _out) = grid(TWO_SEEDS);
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
        let (g, _out) = grid(TWO_SEEDS);
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

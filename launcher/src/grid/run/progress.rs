//! What a person watching a grid sees: with a terminal, live lines (the grid's cells done out
//! of the total with an ETA, and one line per worker with its current cell); without one,
//! plain log lines when a cell starts and ends. The ETA weighs cells by their cost estimate,
//! since a 16-shot ImageNet cell costs hundreds of 1-shot ones.
use crate::grid::{Cell, CellKind, Grid};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// Live lines when the output is a terminal (a single process), plain lines otherwise.
    /// Under mpirun no rank can tell whether mpirun writes to a terminal (Open MPI gives rank 0
    /// a pseudo-terminal either way): ask for `bar` there.
    #[default]
    Auto,
    /// Live lines (rank 0 draws them under mpirun).
    Bar,
    /// One log line per started and finished cell.
    Plain,
}

/// The live display while one is drawn: log lines are printed above it instead of through it.
static LIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<MultiProgress>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prints `error: {msg}` the way log lines are printed: whole, in one write. Under mpirun the
/// ranks' stderr streams are merged chunk by chunk, and `eprintln!` writes a message's pieces
/// one by one, so two ranks failing together printed each other's words inside their own lines.
pub fn print_error(msg: impl std::fmt::Display) {
    let _ = std::io::Write::flush(&mut LogWriter(format!("error: {msg}\n").into_bytes()));
}

/// A `tracing` writer that prints above the live lines while they are drawn (on their
/// stream), else to stderr; what it holds goes out in one write.
pub struct LogWriter(Vec<u8>);

impl LogWriter {
    pub fn make() -> LogWriter {
        LogWriter(Vec::new())
    }
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        let shown = live().clone();
        match shown {
            Some(m) => m.println(text.trim_end_matches('\n')),
            None => std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes()),
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// "caltech101 coop 4-shot seed 1 (base)": enough to recognise a cell.
pub fn describe(cell: &Cell) -> String {
    let s = &cell.spec;
    if cell.kind == crate::grid::CellKind::Features {
        return format!(
            "{} test features ({})",
            s.dataset,
            subpt_trainer::data::SubsampleClasses::list(&s.eval_subsets)
        );
    }
    s.describe()
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Cost estimates are per kind of cell: a test-feature cell's (image encodes) and a training
/// cell's (prompt passes) are not in the same unit, so each kind gets its own measured rate.
const KINDS: usize = 2;

fn kind(cell: &Cell) -> usize {
    kind_of(&cell.kind)
}

fn kind_of(k: &CellKind) -> usize {
    usize::from(*k != CellKind::Features)
}

/// Seconds left: per kind, the remaining cost at the worker-seconds per cost unit of that
/// kind, less the time running cells have already had, shared by `workers` working at once.
/// A kind's rate is the one measured on its finished cells, else `prior` (earlier results in
/// the output directory), else the other kind's; a running cell that has taken longer than
/// that rate allows raises it (it is not done yet), so the first long training cell is not
/// read at the feature cells' rate.
fn eta_secs(
    left: [f64; KINDS],
    done: [f64; KINDS],
    busy: [f64; KINDS],
    running: &[(usize, f64, f64)],
    prior: Option<[f64; KINDS]>,
    workers: usize,
) -> Option<f64> {
    let measured = |k: usize| (done[k] > 0.0).then(|| busy[k] / done[k]);
    let rate = |k: usize| {
        let base = measured(k)
            .or(prior.map(|p| p[k]))
            .or_else(|| measured(1 - k));
        let floor = running
            .iter()
            .filter(|(rk, cost, _)| *rk == k && *cost > 0.0)
            .map(|(_, cost, elapsed)| elapsed / cost)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        match (base, floor) {
            (Some(b), Some(f)) => Some(b.max(f)),
            (b, f) => b.or(f),
        }
    };
    let mut total = 0.0;
    for (k, &l) in left.iter().enumerate() {
        if l > 0.0 {
            total += l * rate(k)?;
        }
    }
    let spent: f64 = running.iter().map(|(_, _, elapsed)| elapsed).sum();
    Some((total - spent).max(0.0) / workers.max(1) as f64)
}

pub struct Progress {
    live: Option<(ProgressBar, Vec<ProgressBar>)>,
    workers: Vec<String>,
    running: Vec<Option<(String, Instant)>>,
    total: usize,
    settled: usize,
    cost_left: [f64; KINDS],
    cost_done: [f64; KINDS],
    /// Worker-seconds spent on finished cells, per kind.
    busy: [f64; KINDS],
    /// Kind and cost of each worker's running cell.
    running_cost: Vec<Option<(usize, f64)>>,
    /// Rates from earlier results of this grid's output directory, until this run has its own.
    prior: Option<[f64; KINDS]>,
}

impl Progress {
    /// `workers` name who takes cells ("rank 0", "ranks 2-3"); `settled` cells (already done)
    /// count as finished but not towards the rate.
    pub fn new(
        grid: &Grid,
        workers: Vec<String>,
        settled: &[bool],
        mode: ProgressMode,
        mpi: bool,
    ) -> Self {
        let use_bars = match mode {
            ProgressMode::Plain => false,
            ProgressMode::Bar => true,
            ProgressMode::Auto => !mpi && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        // Open MPI gives rank 0 a pseudo-terminal for stdout, which it forwards to mpirun's.
        let target = if mpi {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::stderr()
        };
        let total = grid.cells.len();
        let done = settled.iter().filter(|&&d| d).count();
        let live = (use_bars && !target.is_hidden()).then(|| {
            let multi = MultiProgress::with_draw_target(target);
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cells {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            overall.set_prefix(grid.name.clone());
            overall.set_position(done as u64);
            let lines = workers
                .iter()
                .map(|w| {
                    let line = multi.add(ProgressBar::new_spinner());
                    line.set_style(
                        ProgressStyle::with_template("  {prefix:<10} {spinner} {msg} {elapsed}")
                            .expect("static template"),
                    );
                    line.set_prefix(w.clone());
                    line.set_message("waiting");
                    line.enable_steady_tick(Duration::from_millis(200));
                    line
                })
                .collect();
            *live() = Some(multi);
            (overall, lines)
        });
        let mut cost_left = [0.0; KINDS];
        for (c, _) in grid.cells.iter().zip(settled).filter(|(_, &d)| !d) {
            cost_left[kind(c)] += c.cost;
        }
        let prior = crate::grid::cost::rates_from_results(&grid.output_dir).map(|r| {
            let mut p = [0.0; KINDS];
            p[kind_of(&CellKind::Features)] = r.features;
            p[kind_of(&CellKind::Train)] = r.train;
            p
        });
        Progress {
            live,
            running_cost: vec![None; workers.len()],
            prior,
            running: vec![None; workers.len()],
            workers,
            total,
            settled: done,
            cost_left,
            cost_done: [0.0; KINDS],
            busy: [0.0; KINDS],
        }
    }

    /// Time left at the rates measured so far.
    pub fn eta(&self) -> Option<f64> {
        let running: Vec<(usize, f64, f64)> = self
            .running
            .iter()
            .zip(&self.running_cost)
            .filter_map(|(r, c)| {
                let ((_, since), (k, cost)) = (r.as_ref()?, (*c)?);
                Some((k, cost, since.elapsed().as_secs_f64()))
            })
            .collect();
        eta_secs(
            self.cost_left,
            self.cost_done,
            self.busy,
            &running,
            self.prior,
            self.workers.len(),
        )
    }

    fn eta_text(&self) -> String {
        self.eta()
            .map(|s| format!("ETA {}", duration(s)))
            .unwrap_or_default()
    }

    pub fn start(&mut self, worker: usize, cell: &Cell) {
        let what = describe(cell);
        // A worker's previous cell has ended by now; the estimate counts from this one.
        self.running_cost[worker] = Some((kind(cell), cell.cost));
        match &self.live {
            Some((overall, lines)) => {
                lines[worker].set_message(what.clone());
                lines[worker].reset_elapsed();
                overall.set_message(self.eta_text());
            }
            None => tracing::info!(
                cell = %cell.id,
                "[{}/{}] {}: {what} {}",
                self.settled,
                self.total,
                self.workers[worker],
                self.eta_text()
            ),
        }
        self.running[worker] = Some((what, Instant::now()));
    }

    /// A cell ended on `worker`: `Ok` or the reason it failed.
    pub fn finish(&mut self, worker: usize, cell: &Cell, outcome: Result<(), &str>) {
        self.settled += 1;
        let (what, since) = self.running[worker]
            .take()
            .unwrap_or_else(|| (describe(cell), Instant::now()));
        self.running_cost[worker] = None;
        let k = kind(cell);
        self.cost_left[k] -= cell.cost;
        self.cost_done[k] += cell.cost;
        self.busy[k] += since.elapsed().as_secs_f64();
        let took = duration(since.elapsed().as_secs_f64());
        let eta = self.eta_text();
        match &self.live {
            Some((overall, lines)) => {
                overall.set_position(self.settled as u64);
                overall.set_message(eta);
                lines[worker].set_message("waiting");
                if let Err(e) = outcome {
                    tracing::error!(cell = %cell.id, "{what} failed: {e}");
                }
            }
            None => match outcome {
                Ok(()) => tracing::info!(
                    cell = %cell.id,
                    "[{}/{}] {}: {what} done in {took} {eta}",
                    self.settled,
                    self.total,
                    self.workers[worker]
                ),
                Err(e) => tracing::error!(
                    cell = %cell.id,
                    "[{}/{}] {}: {what} failed after {took}: {e}",
                    self.settled,
                    self.total,
                    self.workers[worker]
                ),
            },
        }
    }

    /// A cell that will not run (a dependency failed).
    pub fn skip(&mut self, cell: &Cell) {
        self.settled += 1;
        self.cost_left[kind(cell)] -= cell.cost;
        if let Some((overall, _)) = &self.live {
            overall.set_position(self.settled as u64);
        }
    }

    /// Removes the live lines so the summary prints on a clean screen.
    pub fn close(&mut self) {
        if let Some((overall, lines)) = self.live.take() {
            for l in lines {
                l.finish_and_clear();
            }
            overall.finish_and_clear();
            *live() = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::duration(4.4), "4s");
        assert_eq!(super::duration(125.0), "2m05s");
        assert_eq!(super::duration(7325.0), "2h02m");
    }

    #[test]
    fn eta_scales_the_remaining_cost_by_the_rate_so_far() {
        let eta = |left, done, busy, workers| super::eta_secs(left, done, busy, &[], None, workers);
        assert_eq!(eta([0.0, 10.0], [0.0, 0.0], [0.0, 0.0], 1), None);
        // 2 cost units in 10 s: 6 more take 30 s, whatever the number of cells; two workers
        // halve it.
        assert_eq!(eta([0.0, 6.0], [0.0, 2.0], [0.0, 10.0], 1), Some(30.0));
        assert_eq!(eta([0.0, 6.0], [0.0, 2.0], [0.0, 10.0], 2), Some(15.0));
        assert_eq!(eta([0.0, 0.0], [0.0, 2.0], [0.0, 10.0], 1), Some(0.0));
        // A feature cell estimated at 92 % of the grid that ran in 2 s does not make the
        // training cells look fast: they go at their own rate (1 unit in 10 s).
        assert_eq!(eta([0.0, 7.0], [92.0, 1.0], [2.0, 10.0], 1), Some(70.0));
        // Until a training cell finishes, the feature rate stands in.
        assert_eq!(eta([0.0, 4.0], [2.0, 0.0], [1.0, 0.0], 1), Some(2.0));
    }

    #[test]
    fn eta_counts_the_running_cells_and_earlier_results() {
        use super::eta_secs;
        // The first training cell (cost 1 of 4 left) has run 100 s: the feature rate (0.5 s a
        // unit) would say 2 s; it has shown a unit takes at least 100 s, and 100 s are spent.
        let running = [(1, 1.0, 100.0)];
        assert_eq!(
            eta_secs([0.0, 4.0], [2.0, 0.0], [1.0, 0.0], &running, None, 1),
            Some(300.0)
        );
        // A running cell within the measured rate changes only the time already spent.
        let running = [(1, 2.0, 5.0)];
        assert_eq!(
            eta_secs([0.0, 6.0], [0.0, 2.0], [0.0, 10.0], &running, None, 1),
            Some(25.0)
        );
        // Earlier results of the grid set the rate before this run has any.
        let prior = Some([0.5, 20.0]);
        assert_eq!(
            eta_secs([1.0, 3.0], [0.0, 0.0], [0.0, 0.0], &[], prior, 1),
            Some(60.5)
        );
        // ... until its own cells say otherwise.
        assert_eq!(
            eta_secs([0.0, 3.0], [0.0, 1.0], [0.0, 10.0], &[], prior, 1),
            Some(30.0)
        );
    }
}

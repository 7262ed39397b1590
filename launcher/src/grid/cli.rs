//! `subpt-bench run --grid FILE` (also `subpt-bench --grid FILE`).
use super::progress::ProgressMode;
use super::{dry_run, Grid};
use crate::ranks::{launched_world_size, local_device};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    /// Grid file (see configs/).
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    #[command(flatten)]
    pub paths: super::PathOverrides,
    /// List the cells, their dependencies and the total cost estimate; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = subpt_trainer::device::parse_device)]
    pub device: tch::Device,
    /// Data-parallel cells: groups of N consecutive mpirun ranks train one cell together
    /// (each rank a shard of every batch, gradients all-reduced before the SubPT projection).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub dp: u32,
    /// Live lines (`bar`), log lines (`plain`), or `auto`: live lines on a terminal. Under
    /// mpirun no rank can tell whether mpirun writes to a terminal, so `auto` means plain there.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// libtorch threads per rank [default: OMP_NUM_THREADS, else the node's usable cores
    /// divided by its ranks; one for small models unless given].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Run part I of N of the grid (0 <= I < N): a cell stays with what it depends on, parts
    /// are balanced by the cost model. Inside a SLURM array job the task's own part by
    /// default (its task id from the array's first, of the array's task count).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<super::Shard>,
}

impl Default for GridArgs {
    fn default() -> Self {
        GridArgs {
            grid: None,
            paths: Default::default(),
            dry_run: false,
            device: tch::Device::Cpu,
            dp: 1,
            progress: ProgressMode::Auto,
            threads: None,
            shard: None,
        }
    }
}

/// Runs the grid's remaining cells (over all MPI ranks when started by mpirun), then writes
/// the report on rank 0. `grid` is the part this process runs (`whole` less other shards'
/// cells); the report covers `whole`, so the last part to finish reports them all.
fn execute_and_report(grid: &Grid, whole: &Grid, args: &GridArgs) -> Result<()> {
    let (device, dp) = (args.device, args.dp as usize);
    let world_size = launched_world_size();
    if dp > world_size {
        bail!("--dp {dp}: a data-parallel group needs {dp} ranks, but this launch has {world_size} (start it with mpirun -n {dp} or more)");
    }
    let started = std::time::Instant::now();
    let s = if world_size > 1 {
        let Some((universe, threading)) = mpi::initialize_with_threading(mpi::Threading::Multiple)
        else {
            bail!("MPI was already initialised");
        };
        if threading < mpi::Threading::Multiple {
            bail!("the MPI library does not support MPI_THREAD_MULTIPLE, which the grid dispatcher needs (got {threading:?})");
        }
        let world = universe.world();
        use mpi::traits::Communicator as _;
        match super::scheduler::execute_mpi(grid, local_device(device), &world, dp, args.progress) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            // The other ranks wait for work or collectives this rank will never join: end the
            // whole job rather than leave it hanging.
            Err(e) => {
                super::progress::print_error(format_args!("rank {}: {e}", world.rank()));
                world.abort(1)
            }
        }
    } else {
        super::execute::execute(grid, device, args.progress)
    };
    let wall = started.elapsed().as_secs_f64();
    // Published numbers ship beside the configs (`results/reference/`).
    let shipped = grid
        .source
        .parent()
        .map(|d| d.join("../results/reference"))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| "results/reference".into());
    let report_dir = grid.output_dir.join("report");
    let scope = crate::report::collect::Scope::Grid {
        name: grid.name.clone(),
        ids: whole.cells.iter().map(|c| c.id.clone()).collect(),
        failed: s.failed.keys().chain(s.skipped.keys()).cloned().collect(),
    };
    let mut report_error = None;
    let (report, reported) =
        match crate::report::generate(&grid.output_dir, &shipped, &report_dir, &scope) {
            Ok(r) => (format!("report in {}", report_dir.display()), Some(r)),
            Err(e) => {
                let line = format!("report not written: {e}");
                // The previous run's tables would pass for this run's: replace them by why.
                let _ = std::fs::remove_dir_all(&report_dir);
                let mut index = format!("# {}\n\n{line}\n", grid.name);
                for (id, why) in s.failed.iter().chain(&s.skipped) {
                    index.push_str(&format!("\n- {id}: did not finish in the last run: {why}"));
                }
                let _ =
                    subpt_trainer::io::write_atomic(&report_dir.join("index.md"), index.as_bytes());
                report_error = Some(line.clone());
                (line, None)
            }
        };
    let record = serde_json::json!({
        "grid": grid.name,
        "source": grid.source,
        "cells": whole.cells.len(),
        "cell_ids": whole.cells.iter().map(|c| &c.id).collect::<Vec<_>>(),
        "shard": args.shard.map(|s| s.to_string()),
        "already_done": s.already_done,
        "ran": s.ran,
        "elsewhere": s.elsewhere,
        "failed": s.failed,
        "skipped": s.skipped,
        "ranks": world_size,
        "dp": dp,
        "wall_s": wall,
    });
    let summary_path = grid.output_dir.join(crate::report::collect::GRID_SUMMARY);
    if let Err(e) = serde_json::to_vec_pretty(&record)
        .map_err(|e| subpt_trainer::io::IoError::new(&summary_path, std::io::Error::other(e)))
        .and_then(|b| subpt_trainer::io::write_atomic(&summary_path, &b))
    {
        tracing::warn!("{}: {e}", summary_path.display());
    }
    let part = match args.shard {
        Some(sh) => format!(
            " (shard {sh}: {} of {} cells)",
            grid.cells.len(),
            whole.cells.len()
        ),
        None => String::new(),
    };
    let elsewhere = match s.elsewhere.len() {
        0 => String::new(),
        n => format!(", {n} done by other processes"),
    };
    println!(
        "grid `{}`{part}: {} cells, {} already done, {} ran{elsewhere}, {} failed, {} skipped in {:.1} s; {}",
        grid.name,
        grid.cells.len(),
        s.already_done.len(),
        s.ran.len(),
        s.failed.len(),
        s.skipped.len(),
        wall,
        report
    );
    // Cells by what they are, then their id (the directory under the output).
    let name = |id: &str| match grid.cells.iter().find(|c| c.id == id) {
        Some(c) => format!("{} [{id}]", super::progress::describe(c)),
        None => id.to_string(),
    };
    for (id, e) in &s.failed {
        println!("  failed  {}: {e}", name(id));
    }
    for line in skipped_lines(&s.skipped, &name) {
        println!("{line}");
    }
    if let Some(r) = &reported {
        crate::report::print_left_out(r);
    }
    if !s.failed.is_empty() {
        bail!("{} cell(s) failed", s.failed.len());
    }
    // The tables are what the run is for: a report that could not be written is a failure.
    if let Some(e) = report_error {
        bail!("{e}");
    }
    Ok(())
}

pub fn run(args: &GridArgs) -> Result<()> {
    let Some(file) = &args.grid else {
        bail!("no grid given: pass --grid FILE (see configs/)");
    };
    let whole = Grid::load(file, &args.paths)?;
    let mut args = args.clone();
    if args.shard.is_none() {
        args.shard =
            super::Shard::from_slurm(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    }
    let grid = match args.shard {
        Some(sh) => super::shard::select(&whole, sh),
        None => whole.clone(),
    };
    if !args.dry_run {
        crate::ranks::set_thread_budget(args.threads);
        return execute_and_report(&grid, &whole, &args);
    }
    let mut listing = dry_run(&grid);
    if let Some(sh) = args.shard {
        listing.push_str(&super::dryrun::shards(&whole, sh.count));
    }
    // A listing piped into `head` must end quietly, not panic on the closed pipe.
    use std::io::Write;
    match std::io::stdout().lock().write_all(listing.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The console's lines for skipped cells, grouped by cause: one failed dependency can skip
/// hundreds of cells, and the causes must not drown under their lines. A cause shared by at
/// most three cells names each of them.
fn skipped_lines(
    skipped: &std::collections::BTreeMap<String, String>,
    name: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut by_cause: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
    for (id, why) in skipped {
        by_cause.entry(why.as_str()).or_default().push(id);
    }
    let mut out = Vec::new();
    for (why, ids) in by_cause {
        if ids.len() <= 3 {
            out.extend(
                ids.iter()
                    .map(|id| format!("  skipped {}: {why}", name(id))),
            );
        } else {
            out.push(format!("  skipped {} cells: {why}", ids.len()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn skipped_cells_are_grouped_by_cause() {
        let mut skipped = std::collections::BTreeMap::new();
        for i in 0..50 {
            skipped.insert(
                format!("c{i:02}"),
                "dependency features did not finish".into(),
            );
        }
        skipped.insert("x".into(), "dependency coop did not finish".into());
        let lines = super::skipped_lines(&skipped, &|id| format!("cell {id}"));
        assert_eq!(
            lines,
            [
                "  skipped cell x: dependency coop did not finish",
                "  skipped 50 cells: dependency features did not finish",
            ]
        );
    }
}

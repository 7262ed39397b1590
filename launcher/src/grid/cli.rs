//! `subpt-bench run --grid FILE` (also `subpt-bench --grid FILE`).
use super::{dry_run, Grid};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    /// Grid file (see configs/).
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    /// Output directory; replaces the grid's `output_dir`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// List the cells, their dependencies and the total cost estimate; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = subpt_trainer::device::parse_device)]
    pub device: tch::Device,
}

impl Default for GridArgs {
    fn default() -> Self {
        GridArgs {
            grid: None,
            out: None,
            dry_run: false,
            device: tch::Device::Cpu,
        }
    }
}

/// The world size when started by mpirun (Open MPI or a PMI-based launcher), else 1.
fn launched_world_size() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse().ok())
        .unwrap_or(1)
}

/// One GPU per local rank when CUDA is in use.
fn local_device(device: tch::Device) -> tch::Device {
    let local: Option<usize> = [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse().ok());
    match (device, local) {
        (tch::Device::Cuda(_), Some(l)) => {
            tch::Device::Cuda(l % (tch::Cuda::device_count().max(1) as usize))
        }
        _ => device,
    }
}

/// Runs the grid's remaining cells (over all MPI ranks when started by mpirun), then writes
/// the report on rank 0.
fn execute_and_report(grid: &Grid, device: tch::Device) -> Result<()> {
    let s = if launched_world_size() > 1 {
        let Some((universe, threading)) = mpi::initialize_with_threading(mpi::Threading::Multiple)
        else {
            bail!("MPI was already initialised");
        };
        if threading < mpi::Threading::Multiple {
            bail!("the MPI library does not support MPI_THREAD_MULTIPLE, which the grid dispatcher needs (got {threading:?})");
        }
        let world = universe.world();
        match super::scheduler::execute_mpi(grid, local_device(device), &world) {
            Some(s) => s,
            None => return Ok(()),
        }
    } else {
        super::execute::execute(grid, device)
    };
    let reference = std::path::Path::new("results/reference");
    let report = grid.output_dir.join("report");
    if let Err(e) = crate::report::generate(&grid.output_dir, reference, &report) {
        tracing::warn!("report not written: {e}");
    }
    println!(
        "grid `{}`: {} cells, {} already done, {} ran, {} failed, {} skipped; report in {}",
        grid.name,
        grid.cells.len(),
        s.already_done.len(),
        s.ran.len(),
        s.failed.len(),
        s.skipped.len(),
        report.display()
    );
    for (id, e) in &s.failed {
        println!("  failed  {id}: {e}");
    }
    for (id, why) in &s.skipped {
        println!("  skipped {id}: {why}");
    }
    if !s.failed.is_empty() {
        bail!("{} cell(s) failed", s.failed.len());
    }
    Ok(())
}

pub fn run(args: &GridArgs) -> Result<()> {
    let Some(file) = &args.grid else {
        bail!("no grid given: pass --grid FILE (see configs/)");
    };
    let grid = Grid::load(file, args.out.as_deref())?;
    if !args.dry_run {
        return execute_and_report(&grid, args.device);
    }
    // A listing piped into `head` must end quietly, not panic on the closed pipe.
    use std::io::Write;
    match std::io::stdout()
        .lock()
        .write_all(dry_run(&grid).as_bytes())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

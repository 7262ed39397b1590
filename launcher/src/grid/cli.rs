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

/// Runs the grid's remaining cells in this process, then writes the report.
fn execute_and_report(grid: &Grid, device: tch::Device) -> Result<()> {
    let s = super::execute::execute(grid, device);
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

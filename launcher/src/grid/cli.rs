//! `subpt-bench run --grid FILE` (also `subpt-bench --grid FILE`).
use super::{dry_run, Grid};
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
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
}

pub fn run(args: &GridArgs) -> Result<()> {
    let Some(file) = &args.grid else {
        bail!("no grid given: pass --grid FILE (see configs/)");
    };
    let grid = Grid::load(file, args.out.as_deref())?;
    if !args.dry_run {
        bail!(
            "running a grid ({} cells) lands with the MPI scheduler; for now use --dry-run to \
             list the cells, or `subpt-bench train` for a single cell",
            grid.cells.len()
        );
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

//! `subpt-bench slurm`: the sbatch script of an array job over a grid. Each array task runs
//! one shard (`--shard`, from its task id), one GPU per task by default, threads from the
//! allocation; all of them share the grid's output directory and feature cache through the
//! cell claims, so a requeued (preempted) task runs its shard again and finds its finished
//! cells done. `subpt-bench report --results <output>` merges the shards' results.
use super::{Grid, PathOverrides};
use anyhow::{bail, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct SlurmArgs {
    /// Grid file (see configs/).
    #[arg(long, value_name = "FILE")]
    pub grid: PathBuf,
    /// Array tasks: the grid's shards (see `--shard` and `--dry-run --shard 0/N`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub array: u32,
    /// GPUs per task (0: CPU tasks).
    #[arg(long, value_name = "G", default_value_t = 1)]
    pub gpus_per_task: u32,
    /// CPU cores per task (its libtorch threads and data loading).
    #[arg(long, value_name = "C", default_value_t = 4)]
    pub cpus_per_task: u32,
    /// Time limit per task (sbatch's format, e.g. 4:00:00).
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    #[command(flatten)]
    pub paths: PathOverrides,
}

/// A word for bash: single-quoted unless it is plain.
fn quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=+@%,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The script, for `grid` loaded from `args.grid` with the arguments' paths; `bin` is the
/// `subpt-bench` the tasks run (`$SUBPT_BENCH` replaces it at run time).
pub fn script(args: &SlurmArgs, grid: &Grid, bin: &Path) -> String {
    let n = args.array;
    let out = &grid.output_dir;
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Grid `{}` ({}) as a SLURM array of {n} tasks, one shard of it each.\n\
         # Submit: sbatch <this file>. Results: {}; once every task is done:\n\
         #   subpt-bench report --results {} --reference <repository>/results/reference",
        grid.name,
        absolute(&args.grid).display(),
        out.display(),
        quote(&out.display().to_string()),
    );
    let _ = writeln!(
        s,
        "#SBATCH --job-name={}",
        quote(&format!("subpt-{}", grid.name))
    );
    let _ = writeln!(s, "#SBATCH --array=0-{}", n - 1);
    let _ = writeln!(s, "#SBATCH --ntasks=1");
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", args.cpus_per_task);
    if args.gpus_per_task > 0 {
        let _ = writeln!(s, "#SBATCH --gpus-per-task={}", args.gpus_per_task);
    }
    if let Some(t) = &args.time {
        let _ = writeln!(s, "#SBATCH --time={}", quote(t));
    }
    if let Some(p) = &args.partition {
        let _ = writeln!(s, "#SBATCH --partition={}", quote(p));
    }
    // A preempted task is requeued and appends to its log.
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(
        s,
        "#SBATCH --output={}",
        quote(&out.join("slurm").join("%A_%a.log").display().to_string())
    );
    let _ = writeln!(s, "set -euo pipefail");
    let _ = writeln!(
        s,
        "BIN=\"${{SUBPT_BENCH:-{}}}\"",
        bin.display().to_string().replace('"', "\\\"")
    );
    let _ = writeln!(
        s,
        "# This task's shard: its id counted from the array's first task, of the array's count.\n\
         SHARD=\"$(( SLURM_ARRAY_TASK_ID - ${{SLURM_ARRAY_TASK_MIN:-0}} ))/${{SLURM_ARRAY_TASK_COUNT:-{n}}}\"\n\
         THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         export OMP_NUM_THREADS=\"$THREADS\""
    );
    let device = if args.gpus_per_task > 0 {
        "cuda"
    } else {
        "cpu"
    };
    let mut cmd = vec![
        "exec \"$BIN\" --grid".to_string(),
        quote(&absolute(&args.grid).display().to_string()),
    ];
    let path = |flag: &str, p: &Path| format!("{flag} {}", quote(&p.display().to_string()));
    cmd.push(path("--out", out));
    for (flag, p) in [
        ("--weights", &args.paths.weights),
        ("--data-root", &args.paths.data_root),
        ("--cache", &args.paths.cache),
    ] {
        if let Some(p) = p {
            cmd.push(path(flag, &absolute(p)));
        }
    }
    cmd.push(format!(
        "--shard \"$SHARD\" --threads \"$THREADS\" --device {device} --progress plain"
    ));
    let _ = writeln!(s, "{}", cmd.join(" \\\n    "));
    s
}

/// Prints the script for `args` (and makes the directory its logs go to).
pub fn run(args: &SlurmArgs) -> Result<()> {
    let grid = Grid::load(&args.grid, &args.paths)?;
    if grid.cells.is_empty() {
        bail!("grid `{}` has no cells", grid.name);
    }
    let logs = grid.output_dir.join("slurm");
    std::fs::create_dir_all(&logs).map_err(|e| anyhow::anyhow!("{}: {e}", logs.display()))?;
    let bin = std::env::current_exe().unwrap_or_else(|_| "subpt-bench".into());
    print!("{}", script(args, &grid, &bin));
    Ok(())
}

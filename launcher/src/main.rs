//! `subpt-bench`: the command line. A thin layer over `subpt_trainer` and the launcher library.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use subpt_bench::grid::progress::{LogWriter, ProgressMode};

mod commands;
mod prepare;
mod pretrain;
mod train;

#[derive(Parser)]
#[command(
    name = "subpt-bench",
    version,
    about = "Prompt-tuning benchmarks on CLIP: CoOp, SubPT, NFL, CoCoOp, KgCoOp, ProGrad"
)]
#[command(args_conflicts_with_subcommands = true, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `subpt-bench --grid FILE` is `subpt-bench run --grid FILE`.
    #[command(flatten)]
    grid: subpt_bench::grid::cli::GridArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the architecture inferred from a weights file and its parameter count.
    Inspect {
        #[arg(long)]
        weights: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Encode texts and images with CLIP; writes L2-normalised features as safetensors.
    Encode(commands::EncodeArgs),
    /// Train and evaluate one cell (a method on a dataset, shot count and seed).
    Train(Box<train::TrainArgs>),
    /// Prepare inputs: datasets, few-shot subsets, small generated models.
    #[command(subcommand)]
    Prepare(prepare::PrepareCommand),
    /// Tables (CSV, Markdown) and SVG plots from every result.json below a directory.
    Report {
        #[arg(long)]
        results: PathBuf,
        /// Output directory (default: <results>/report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Published numbers to compare with (default: <results>/reference).
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Every result below the directory. By default only the cells of the grid last run
        /// into it (its grid-summary.json) are reported, and the others are listed.
        #[arg(long)]
        all: bool,
    },
    /// Print CLIP token ids (77-long, zero-padded) of each text as JSON.
    Tokenize {
        #[arg(long = "text", required = true)]
        texts: Vec<String>,
        /// Cut over-long texts to the context length instead of failing.
        #[arg(long)]
        truncate: bool,
        #[arg(long, default_value_t = subpt_trainer::clip::tokenizer::CONTEXT_LENGTH)]
        context_length: usize,
    },
    /// Pretrain a small CLIP on the shapes world (drawn objects and their captions) and write
    /// it in OpenAI's layout with a model card; skipped when an up-to-date one exists.
    Pretrain(pretrain::PretrainArgs),
    /// Run a benchmark grid (a YAML file under configs/); --dry-run lists its cells.
    Run(subpt_bench::grid::cli::GridArgs),
    /// Print the sbatch script of a SLURM array job over a grid (one shard per task).
    Slurm(subpt_bench::grid::slurm::SlurmArgs),
}

fn main() {
    let cli = Cli::parse();
    // With live lines on rank 0, the other ranks' progress logs would only scramble them.
    let grid = match &cli.command {
        Some(Command::Run(g)) => g,
        _ => &cli.grid,
    };
    let quiet = grid.progress == ProgressMode::Bar
        && subpt_bench::ranks::launched_world_size() > 1
        && subpt_bench::ranks::launched_world_rank() != 0;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUBPT_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" })
            }),
        )
        .with_writer(LogWriter::make)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(cli) {
        subpt_bench::grid::progress::print_error(format_args!("{e:#}"));
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return subpt_bench::grid::cli::run(&cli.grid);
    };
    match command {
        Command::Run(g) => subpt_bench::grid::cli::run(&g),
        Command::Slurm(a) => subpt_bench::grid::slurm::run(&a),
        Command::Inspect { weights, json } => commands::inspect(&weights, json),
        Command::Encode(args) => commands::encode(&args),
        Command::Prepare(p) => prepare::run(p),
        Command::Pretrain(a) => pretrain::run(&a),
        Command::Train(a) => train::train(&a),
        Command::Report {
            results,
            out,
            reference,
            all,
        } => report(&results, out, reference, all),
        Command::Tokenize {
            texts,
            truncate,
            context_length,
        } => commands::tokenize(&texts, context_length, truncate),
    }
}

fn report(
    results: &std::path::Path,
    out: Option<PathBuf>,
    reference: Option<PathBuf>,
    all: bool,
) -> Result<()> {
    use subpt_bench::report::collect::Scope;
    let out = out.unwrap_or_else(|| results.join("report"));
    let reference = reference.unwrap_or_else(|| results.join("reference"));
    let scope = match all {
        true => Scope::All,
        false => Scope::last_grid(results),
    };
    let summary = subpt_bench::report::generate(results, &reference, &out, &scope)?;
    subpt_bench::report::print_left_out(&summary);
    tracing::info!(
        "{} runs, {} files written to {}",
        summary.runs,
        summary.written.len(),
        out.display()
    );
    Ok(())
}

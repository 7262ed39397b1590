//! `subpt-bench train`: one cell from flags or a spec file; writes `result.json` atomically.
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use subpt_trainer::comm::{data_parallel, Communicator, Single};
use subpt_trainer::engine::presets::{self, Protocol};
use subpt_trainer::engine::run::run;
use subpt_trainer::engine::spec::{Method, RunSpec};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A RunSpec as JSON (the `spec` of any result.json works); flags below override it.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    #[arg(long, value_parser = dataset_names())]
    pub dataset: Option<String>,
    /// The data root (CoOp's `DATA/` layout).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long, value_parser = method_names())]
    pub method: Option<String>,
    /// Shots per class (required without --spec).
    #[arg(long)]
    pub shots: Option<usize>,
    /// Seed of the few-shot draw, the context init and the batch order (required without --spec).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Classes to train on.
    #[arg(long, value_parser = ["all", "base", "new"])]
    pub subsample: Option<String>,
    /// Class subsets to test on (repeatable) [default: all].
    #[arg(long = "eval", value_parser = ["all", "base", "new"])]
    pub eval: Vec<String>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The protocol whose presets the spec starts from (epochs, class subsets, SubPT's
    /// t_early and rank, NFL's names).
    #[arg(long, default_value = "few_shot", value_parser = protocol_names())]
    pub protocol: String,
    /// Any other field, by the dotted path grids use, e.g. `--set subpt.rank=5` or
    /// `--set prompt.position=middle` (repeatable; values are JSON, else text). The JSON-pointer
    /// form `/subpt/rank=5` is accepted as an alias.
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = subpt_trainer::device::parse_device)]
    pub device: tch::Device,
    /// Data-parallel: every rank of `mpirun` trains this one cell on its shard of each batch,
    /// gradients summed before the SubPT projection (NCCL on GPUs, else MPI); rank 0 writes
    /// the outputs. With CUDA, local rank l uses GPU l (mod the GPU count).
    #[arg(long)]
    pub dp: bool,
    /// libtorch threads [default: OMP_NUM_THREADS, else the usable cores divided by the ranks
    /// on this node; one for small models unless given].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Output directory (result.json, context.safetensors, trajectory.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

/// The accepted values, so `--help` lists them.
fn dataset_names() -> clap::builder::PossibleValuesParser {
    subpt_trainer::data::catalog::DATASETS
        .iter()
        .map(|d| d.id)
        .collect::<Vec<_>>()
        .into()
}

fn protocol_names() -> clap::builder::PossibleValuesParser {
    Protocol::ALL.map(Protocol::name).into()
}

fn method_names() -> clap::builder::PossibleValuesParser {
    Method::ALL.map(Method::name).into()
}

fn resolve(a: &TrainArgs) -> Result<RunSpec> {
    let mut v: serde_json::Value = match &a.spec {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON", p.display()))?;
            // A result.json holds the spec under "spec".
            v.get("spec").cloned().unwrap_or(v)
        }
        None => {
            let (Some(dataset), Some(root), Some(method), Some(weights), Some(shots), Some(seed)) =
                (&a.dataset, &a.root, &a.method, &a.weights, a.shots, a.seed)
            else {
                bail!(
                    "give --spec FILE, or --dataset, --root, --method, --weights, --shots and \
                     --seed (the paper's settings for that method and shot count fill the rest)"
                );
            };
            let method: Method = method.parse().map_err(anyhow::Error::msg)?;
            let protocol: Protocol = a.protocol.parse().map_err(anyhow::Error::msg)?;
            let spec = presets::preset(
                protocol,
                dataset.parse()?,
                root.clone(),
                method,
                shots,
                seed,
                weights.clone(),
            );
            serde_json::to_value(spec)?
        }
    };
    let set = |v: &mut serde_json::Value, ptr: &str, x: serde_json::Value| -> Result<()> {
        match v.pointer_mut(ptr) {
            Some(slot) => *slot = x,
            None => bail!("override {ptr}: no such field in the run spec"),
        }
        Ok(())
    };
    use serde_json::json;
    if let Some(x) = &a.dataset {
        set(&mut v, "/dataset", json!(x))?;
    }
    if let Some(x) = &a.root {
        set(&mut v, "/root", json!(x))?;
    }
    if let Some(x) = &a.method {
        set(&mut v, "/method", json!(x))?;
    }
    if let Some(x) = a.shots {
        set(&mut v, "/shots", json!(x))?;
    }
    if let Some(x) = a.seed {
        set(&mut v, "/seed", json!(x))?;
    }
    if let Some(x) = &a.weights {
        set(&mut v, "/weights", json!(x))?;
    }
    if let Some(x) = &a.subsample {
        set(&mut v, "/subsample", json!(x))?;
    }
    if !a.eval.is_empty() {
        set(&mut v, "/eval_subsets", json!(a.eval))?;
    }
    if let Some(x) = a.epochs {
        set(&mut v, "/epochs", json!(x))?;
    }
    // Base-to-novel NFL reads the dataset's own novel names (the paper's b2n scripts), unless
    // the names were given explicitly.
    let names_given = a
        .overrides
        .iter()
        .any(|o| o.trim_start_matches('/').starts_with("nfl"));
    if v["subsample"] == json!("base") && v["nfl"].is_object() && !names_given {
        set(&mut v, "/nfl/names", json!("novel"))?;
    }
    let spec: RunSpec = serde_json::from_value(v).context("invalid run spec")?;
    let mut assignments = Vec::new();
    for o in &a.overrides {
        let Some((key, val)) = o.split_once('=') else {
            bail!("--set {o}: expected field.path=VALUE");
        };
        // `/a/b` (JSON pointer) is an alias of the dotted `a.b`.
        let key = key
            .strip_prefix('/')
            .map_or(key.to_string(), |k| k.replace('/', "."));
        let x = serde_json::from_str(val).unwrap_or_else(|_| json!(val));
        assignments.push((key, x));
    }
    let pairs: Vec<(&str, &serde_json::Value)> =
        assignments.iter().map(|(k, v)| (k.as_str(), v)).collect();
    subpt_bench::grid::set_fields(&spec, &pairs).map_err(|e| anyhow::anyhow!("--set: {e}"))
}

pub fn train(a: &TrainArgs) -> Result<()> {
    let spec = resolve(a)?;
    if let Some(p) = spec.problems().into_iter().next() {
        anyhow::bail!("{}: {} (set it with --set {}=...)", p.key, p.message, p.key);
    }
    tracing::info!("feature cache: {}", spec.cache_dir.display());
    subpt_trainer::digest::use_index(&spec.cache_dir.join(subpt_trainer::digest::INDEX_FILE));
    subpt_bench::ranks::set_thread_budget(a.threads);
    let universe = match a.dp {
        true => Some(mpi::initialize().context("--dp: MPI was already initialised")?),
        false => None,
    };
    // Declared after the universe so it is dropped before MPI is finalised.
    let device = match a.dp {
        true => subpt_bench::ranks::local_device(a.device),
        false => a.device,
    };
    let comm: Box<dyn Communicator> = match &universe {
        Some(u) => data_parallel(u.world(), device)?,
        None => Box::new(Single),
    };
    let result = run(&spec, &a.out, device, comm.as_ref())?;
    if comm.rank() != 0 {
        return Ok(());
    }
    let store = subpt_trainer::store::CellDir::new(&a.out);
    store
        .write_json(subpt_trainer::store::RESULT, &result)
        .with_context(|| {
            format!(
                "cannot write {}",
                store.file(subpt_trainer::store::RESULT).display()
            )
        })?;
    for (k, acc) in &result.accuracy {
        println!(
            "{} {} {}-shot seed {}: {k} accuracy {acc:.2}%",
            spec.dataset, spec.method, spec.shots, spec.seed
        );
    }
    if let Some(hm) = result.hm {
        println!("harmonic mean {hm:.2}");
    }
    Ok(())
}

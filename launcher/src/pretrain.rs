//! `subpt-bench pretrain`: makes the small CLIP the demo and the paper-claim tests run on.
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use subpt_trainer::data::fashion_mnist;
use subpt_trainer::pretrain::{self, ModelCard, PretrainConfig};
use tch::Tensor;

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// Output weights (safetensors, OpenAI layout); the model card is written beside it as
    /// <stem>.card.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Folder with the Fashion-MNIST idx files (default: where Debian installs them).
    #[arg(long)]
    pub source: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = PretrainConfig::default().epochs)]
    pub epochs: usize,
    /// Images of the corpus: the first N of the train file (the rest stay downstream data).
    #[arg(long, default_value_t = PretrainConfig::default().images)]
    pub images: usize,
    /// A JSON file with every pretraining setting (see the card's `config`); flags above win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// libtorch intra-op threads (one is fastest for this model size on a shared machine).
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Retrain even when the weights and a card with matching inputs exist.
    #[arg(long)]
    pub force: bool,
}

/// `<dir>/<stem>.card.json` beside `<dir>/<stem>.safetensors`.
pub fn card_path(weights: &Path) -> PathBuf {
    weights.with_extension("card.json")
}

pub fn run(a: &PretrainArgs) -> Result<()> {
    let Some(source) = a.source.clone().or_else(fashion_mnist::find_source) else {
        bail!("no Fashion-MNIST idx files found: install Debian's dataset-fashion-mnist or pass --source");
    };
    let mut cfg = match &a.config {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not a pretraining config", p.display()))?,
        None => PretrainConfig::default(),
    };
    cfg.seed = a.seed;
    cfg.epochs = a.epochs;
    cfg.images = a.images;
    let card_file = card_path(&a.out);
    let inputs = pretrain::inputs_digest(&cfg, &source)?;
    let digest = &inputs.0;
    if !a.force && a.out.is_file() {
        let old: Option<ModelCard> = std::fs::read_to_string(&card_file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        if old.is_some_and(|c| &c.inputs_digest == digest) {
            eprintln!(
                "{} is up to date (same config, data and tool version; --force retrains)",
                a.out.display()
            );
            return Ok(());
        }
    }
    tch::set_num_threads(a.threads.max(1));
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "pretrain [{bar:30}] {pos}/{len} steps, loss {msg}, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let log_every = std::cell::Cell::new(0usize);
    let (weights, card) = pretrain::pretrain(&cfg, &source, inputs, &mut |step, total, loss| {
        if bar.length() != Some(total as u64) {
            bar.set_length(total as u64);
            log_every.set((total / 10).max(1));
        }
        bar.set_position(step as u64);
        bar.set_message(format!("{loss:.3}"));
        if bar.is_hidden() && (step % log_every.get() == 0 || step == total) {
            tracing::info!(step, total, loss, "pretraining");
        }
    })?;
    bar.finish_and_clear();
    let named: Vec<(&str, &Tensor)> = weights.iter().map(|(k, v)| (k.as_str(), v)).collect();
    subpt_trainer::io::with_atomic_path(&a.out, |tmp| -> Result<()> {
        Tensor::write_safetensors(&named, tmp)?;
        Ok(())
    })?;
    subpt_trainer::io::write_atomic(&card_file, serde_json::to_string_pretty(&card)?.as_bytes())
        .with_context(|| format!("writing {}", card_file.display()))?;
    let q = &card.quality;
    eprintln!(
        "pretrained CLIP ({} parameters, {} steps, {:.0} s): zero-shot {:.1} % (base {:.1} / novel {:.1}), linear probe {:.1} %\n  weights {}\n  card    {}",
        card.parameters,
        card.steps,
        card.wall_seconds,
        q.zero_shot,
        q.zero_shot_base,
        q.zero_shot_novel,
        q.linear_probe,
        a.out.display(),
        card_file.display()
    );
    Ok(())
}

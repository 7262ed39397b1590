//! `subpt-bench pretrain`: makes the small CLIP the demo and the paper-claim tests run on.
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use subpt_trainer::pretrain::{self, ModelCard, PretrainConfig};
use tch::Tensor;

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// Output weights (safetensors, OpenAI layout; gzip-compressed when the name ends in .gz);
    /// the model card is written beside it as <stem>.card.json.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Optimiser steps (each draws a new batch of objects).
    #[arg(long, default_value_t = PretrainConfig::default().steps)]
    pub steps: usize,
    /// A JSON file with every pretraining setting (see the card's `config`); flags above win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// libtorch intra-op threads. The shipped model was made with one: the bytes depend on
    /// the thread count and the processor's kernels.
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Retrain even when the weights and a card with matching inputs exist.
    #[arg(long)]
    pub force: bool,
}

/// `<dir>/<stem>.card.json` beside `<dir>/<stem>.safetensors` (or `.safetensors.gz`).
pub fn card_path(weights: &Path) -> PathBuf {
    let name = weights.file_name().unwrap_or_default().to_string_lossy();
    let stem = name
        .strip_suffix(".gz")
        .unwrap_or(&name)
        .strip_suffix(".safetensors")
        .unwrap_or(&name);
    weights.with_file_name(format!("{stem}.card.json"))
}

/// The safetensors bytes of `weights`, gzip-compressed (no name, no time stamp: the same
/// weights give the same bytes) when `gzip`.
fn encode(weights: &[(&str, &Tensor)], gzip: bool) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join("w.safetensors");
    Tensor::write_safetensors(weights, &raw)?;
    let bytes = std::fs::read(&raw)?;
    if !gzip {
        return Ok(bytes);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &bytes)?;
    Ok(enc.finish()?)
}

pub fn run(a: &PretrainArgs) -> Result<()> {
    let mut cfg = match &a.config {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not a pretraining config", p.display()))?,
        None => PretrainConfig::default(),
    };
    cfg.seed = a.seed;
    cfg.steps = a.steps;
    let card_file = card_path(&a.out);
    let digest = pretrain::inputs_digest(&cfg)?;
    if !a.force && a.out.is_file() {
        let old: Option<ModelCard> = std::fs::read_to_string(&card_file)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        if old.is_some_and(|c| c.inputs_digest == digest) {
            eprintln!(
                "{} is up to date (same config, world and tool version; --force retrains)",
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
    let (weights, mut card) = pretrain::pretrain(&cfg, digest, &mut |step, total, loss| {
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
    let gzip = a.out.extension().is_some_and(|e| e == "gz");
    let bytes = encode(&named, gzip)?;
    card.weights_sha256 = subpt_trainer::digest::bytes_digest(&bytes);
    subpt_trainer::io::write_atomic(&a.out, &bytes)?;
    subpt_trainer::io::write_atomic(&card_file, serde_json::to_string_pretty(&card)?.as_bytes())
        .with_context(|| format!("writing {}", card_file.display()))?;
    eprintln!(
        "pretrained CLIP ({} parameters, {} steps, {:.0} s, logit scale {:.1})",
        card.parameters, card.steps, card.wall_seconds, card.logit_scale
    );
    for q in &card.quality {
        eprintln!(
            "  {:15} zero-shot {:5.1} % over {} classes (base {:5.1} / novel {:5.1}), 16-shot linear probe {:5.1} %",
            q.dataset, q.zero_shot, q.classes, q.zero_shot_base, q.zero_shot_novel, q.linear_probe_16
        );
    }
    eprintln!(
        "  weights {}\n  card    {}",
        a.out.display(),
        card_file.display()
    );
    Ok(())
}

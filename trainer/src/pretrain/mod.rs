//! Pretraining of a small CLIP on the shapes world (`subpt_shapes`), so that zero-shot
//! classification works and prompt tuning has something real to tune: the tool's embedded
//! default model (shipped in `assets/`, remade by `subpt-bench pretrain`).
//!
//! The model is the crate's own CLIP (`crate::clip`) over trainable tensors, so what is trained
//! is exactly what every command later loads; the weights are written in OpenAI's key layout.
//! Losses, summed: CLIP's symmetric contrastive loss between the batch's images and their
//! captions (every caption an image fits counts as a positive), and, per attribute, the image
//! against one caption for each value of that attribute. AdamW with linear warm-up then cosine
//! decay. Token rows no caption used are zeros in the written weights (they were never trained),
//! which is what lets the shipped file compress.
pub mod corpus;
pub mod probe;

use crate::clip::config::{ClipConfig, ResNetConfig, TextConfig, VisionConfig, VitConfig};
use crate::clip::random_init::{generate, Spec};
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{normalize, Clip, ClipError};
use crate::data::transforms::SeededRng;
use crate::data::DatasetName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use subpt_shapes::attributes::Axis;
use subpt_shapes::captions::{axis_captions, CaptionConfig};
use subpt_shapes::datasets::{stream_seed, PRETRAIN_STREAM};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    #[error(transparent)]
    Clip(#[from] ClipError),
    #[error("{0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    #[error("pretraining config: {0}")]
    Config(String),
    #[error("pretraining diverged at step {step}: loss {loss}")]
    Diverged { step: usize, loss: f64 },
}

/// The architecture: OpenAI's layout; a ModifiedResNet image tower (the paper's backbone
/// family) or a ViT.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub embed_dim: i64,
    /// Text tower width (64-wide heads).
    pub width: i64,
    pub text_layers: i64,
    /// ViT layers (ignored by a ResNet tower, which has one bottleneck per stage).
    pub vision_layers: i64,
    /// ViT patch size (ignored by a ResNet tower).
    pub patch: i64,
    pub resolution: i64,
    /// `Some(width)`: a ModifiedResNet image tower of that width instead of the ViT.
    #[serde(default)]
    pub resnet_width: Option<i64>,
}

impl Architecture {
    pub fn spec(&self) -> Spec {
        let vision = match self.resnet_width {
            Some(w) => VisionConfig::ResNet(ResNetConfig {
                width: w,
                layers: [1, 1, 1, 1],
                heads: w * 32 / 64,
                resolution: self.resolution,
            }),
            None => VisionConfig::Vit(VitConfig {
                width: self.width,
                layers: self.vision_layers,
                heads: self.width / 64,
                patch: self.patch,
                resolution: self.resolution,
            }),
        };
        Spec {
            embed_dim: self.embed_dim,
            text: TextConfig {
                width: self.width,
                layers: self.text_layers,
                heads: self.width / 64,
                context_length: 77,
                vocab_size: 49408,
            },
            vision,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub seed: u64,
    /// Optimiser steps; every step draws `batch_size` new objects.
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    /// AdamW decay of weight matrices (not embeddings, norms, biases or the logit scale).
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Chance that an image is shown as a Dassl train view (random resized crop and flip),
    /// the views prompt tuning later shows the frozen tower; else the test view.
    pub augment_p: f64,
    pub captions: CaptionConfig,
    /// Weight of the per-attribute losses beside the contrastive one.
    pub attribute_weight: f64,
    /// Initial logit scale (its log is learned, capped at ln 100 as CLIP's is).
    pub logit_scale_init: f64,
    pub architecture: Architecture,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            seed: 0,
            steps: 1950,
            batch_size: 128,
            lr: 2e-3,
            warmup_steps: 100,
            weight_decay: 0.1,
            betas: (0.9, 0.98),
            eps: 1e-6,
            augment_p: 0.5,
            captions: CaptionConfig {
                canonical_p: 0.6,
                colour_p: 0.85,
                pattern_p: 0.6,
                size_p: 0.35,
                background_p: 0.35,
                lead_p: 0.5,
                preamble_p: 0.3,
            },
            attribute_weight: 1.0,
            logit_scale_init: 1.0 / 0.07,
            architecture: Architecture {
                embed_dim: 64,
                width: 64,
                text_layers: 4,
                vision_layers: 4,
                patch: 8,
                resolution: 64,
                resnet_width: Some(16),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LossPoint {
    pub step: usize,
    pub loss: f64,
}

/// What `<name>.card.json` beside the weights says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub tool: String,
    pub version: String,
    /// Digest of the config, the world's drawing and the tool version: the model is remade
    /// only when it changes.
    pub inputs_digest: String,
    pub config: PretrainConfig,
    pub data: String,
    pub architecture: ClipConfig,
    pub parameters: i64,
    /// Token rows some caption used (the others are zeros in the weights).
    pub tokens_used: usize,
    pub steps: usize,
    pub threads: i32,
    pub loss_curve: Vec<LossPoint>,
    pub logit_scale: f64,
    /// Per dataset of the world.
    pub quality: Vec<probe::Quality>,
    pub wall_seconds: f64,
    /// SHA-256 of the weights file as written (filled in by the writer).
    #[serde(default)]
    pub weights_sha256: String,
}

/// The digest a finished model's card must carry for it to be reused: the config, the tool
/// version, and [`world_digest`], so a change of drawing or captions remakes the model.
pub fn inputs_digest(cfg: &PretrainConfig) -> Result<String, PretrainError> {
    Ok(inputs_digest_at(
        cfg,
        &world_digest(cfg)?,
        env!("CARGO_PKG_VERSION"),
    ))
}

/// [`inputs_digest`] as a card written by tool `version` records it: a shipped model's card
/// can be checked against today's config and world whatever version wrote it.
pub fn inputs_digest_at(cfg: &PretrainConfig, world: &str, version: &str) -> String {
    crate::digest::digest_json(&(cfg, world, version))
}

/// A fingerprint of the world a config pretrains on: the first stream items' pixels and
/// caption tokens.
pub fn world_digest(cfg: &PretrainConfig) -> Result<String, PretrainError> {
    let b = corpus::batch(cfg, &corpus::caption_templates(), &Tokenizer::new(), 0, 8)?;
    let px = Vec::<f32>::try_from(b.pixels.flatten(0, -1)).expect("float pixels");
    let ids = Vec::<i64>::try_from(b.ids.flatten(0, -1)).expect("int64 ids");
    Ok(crate::digest::digest_json(&(px, ids)))
}

/// Learning rate at `step`: linear warm-up, then cosine to zero.
fn lr_at(cfg: &PretrainConfig, step: usize, total: usize) -> f64 {
    if step < cfg.warmup_steps {
        return cfg.lr * (step + 1) as f64 / cfg.warmup_steps as f64;
    }
    let t = (step - cfg.warmup_steps) as f64 / (total - cfg.warmup_steps).max(1) as f64;
    0.5 * cfg.lr * (1.0 + (std::f64::consts::PI * t).cos())
}

/// Every token id of `ids` into `used`.
fn note_tokens(ids: &Tensor, used: &mut BTreeSet<i64>) {
    used.extend(Vec::<i64>::try_from(ids.flatten(0, -1)).expect("int64 ids"));
}

/// Pretrains a CLIP; returns its weights (OpenAI layout) and card. `inputs_digest` is what
/// [`inputs_digest`] gave (the caller has it from its up-to-date check); `progress(step, total,
/// loss)` is called after every step.
pub fn pretrain(
    cfg: &PretrainConfig,
    inputs_digest: String,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<(BTreeMap<String, Tensor>, ModelCard), PretrainError> {
    let started = std::time::Instant::now();
    if cfg.batch_size == 0 || cfg.steps == 0 || cfg.warmup_steps >= cfg.steps {
        return Err(PretrainError::Config(format!(
            "need a positive batch size and more steps than warm-up steps (got batch {}, steps {}, warm-up {})",
            cfg.batch_size, cfg.steps, cfg.warmup_steps
        )));
    }
    let spec = cfg.architecture.spec();
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut vars = BTreeMap::new();
    for (key, t) in generate(&spec, cfg.seed as i64) {
        let decay = t.dim() >= 2 && !key.contains("embedding");
        let parts: Vec<&str> = key.split('.').collect();
        let (name, dirs) = parts.split_last().expect("non-empty key");
        let path = dirs
            .iter()
            .fold(vs.root().set_group(usize::from(decay)), |p, d| p.sub(d));
        // Batch norm runs in eval mode: its running statistics are constants.
        let trainable = !key.contains("running_");
        vars.insert(key.clone(), path.add(name, t, trainable));
    }
    let clip = Clip::trainable(
        vars.iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect(),
        Device::Cpu,
    )?;
    let logit_scale = vars["logit_scale"].shallow_clone();
    tch::no_grad(|| {
        let _ = logit_scale.shallow_clone().fill_(cfg.logit_scale_init.ln());
    });
    let mut opt = nn::AdamW {
        beta1: cfg.betas.0,
        beta2: cfg.betas.1,
        wd: cfg.weight_decay,
        eps: cfg.eps,
        amsgrad: false,
    }
    .build(&vs, cfg.lr)?;
    opt.set_weight_decay_group(0, 0.0);
    opt.set_weight_decay_group(1, cfg.weight_decay);

    let templates = corpus::caption_templates();
    let tok = Tokenizer::new();
    let (total, b) = (cfg.steps, cfg.batch_size);
    let every = (total / 100).max(1);
    let (mut curve, mut window) = (Vec::new(), Vec::new());
    let mut used = BTreeSet::new();
    for step in 0..total {
        let batch = corpus::batch(cfg, &templates, &tok, (step * b) as u64, b)?;
        note_tokens(&batch.ids, &mut used);
        let img = normalize(&clip.encode_image(&batch.pixels));
        let emb = clip.text.embed_tokens(&batch.ids);
        let txt = normalize(&clip.text.encode_embeddings(&emb, &batch.ids));
        let scale = logit_scale.exp();
        let logits = img.matmul(&txt.tr()) * &scale;
        // Every caption an image fits is a positive: soft targets spread over them.
        let soft = |l: &Tensor, f: &Tensor| {
            let t = f / f.sum_dim_intlist(-1, true, Kind::Float);
            -(t * l.log_softmax(-1, Kind::Float))
                .sum_dim_intlist(-1, false, Kind::Float)
                .mean(Kind::Float)
        };
        let mut loss = (soft(&logits, &batch.fits) + soft(&logits.tr(), &batch.fits.tr())) * 0.5;
        // Each attribute on its own: the image against one caption per value.
        let mut rng = SeededRng::for_item(stream_seed(cfg.seed, PRETRAIN_STREAM, 1), step as u64);
        for axis in Axis::ALL {
            let texts = axis_captions(axis, &cfg.captions, &templates, &mut rng);
            let ids = clip.tokenize(&tok, &texts, false)?;
            note_tokens(&ids, &mut used);
            let t = normalize(&clip.encode_text(&ids));
            let y: Vec<i64> = batch
                .attributes
                .iter()
                .map(|a| a.value(axis) as i64)
                .collect();
            let l = img.matmul(&t.tr()) * &scale;
            loss += l.cross_entropy_for_logits(&Tensor::from_slice(&y)) * cfg.attribute_weight;
        }
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(PretrainError::Diverged { step, loss: value });
        }
        opt.set_lr(lr_at(cfg, step, total));
        opt.backward_step(&loss);
        // CLIP caps the temperature at 100.
        tch::no_grad(|| {
            let _ = logit_scale.shallow_clone().clamp_(0.0, 100f64.ln());
        });
        window.push(value);
        if window.len() == every || step + 1 == total {
            curve.push(LossPoint {
                step: step + 1,
                loss: window.iter().sum::<f64>() / window.len() as f64,
            });
            window.clear();
        }
        progress(step + 1, total, value);
    }
    drop(clip);
    let mut weights: BTreeMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.detach().copy()))
        .collect();
    zero_unused_rows(&mut weights, &used);
    // The card's numbers come from the frozen model every command loads from these weights.
    let frozen = Clip::from_tensors(
        weights
            .iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect(),
        crate::clip::config::Activation::QuickGelu,
        crate::clip::Precision::Fp32,
        Device::Cpu,
    )?;
    let quality = DatasetName::ALL
        .into_iter()
        .filter(|d| d.is_shapes())
        .map(|d| probe::measure(&frozen, d))
        .collect::<Result<_, _>>()?;
    let card = ModelCard {
        tool: "subpt-bench pretrain".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        inputs_digest,
        config: cfg.clone(),
        data: format!(
            "{} objects drawn from the shapes world (seed {}), each seen once",
            total * b,
            cfg.seed
        ),
        architecture: frozen.config.clone(),
        parameters: frozen.parameters,
        tokens_used: used.len(),
        steps: total,
        threads: tch::get_num_threads(),
        loss_curve: curve,
        logit_scale: frozen.logit_scale,
        quality,
        wall_seconds: started.elapsed().as_secs_f64(),
        weights_sha256: String::new(),
    };
    Ok((weights, card))
}

/// Zeros the token-embedding rows of ids not in `used`: no caption trained them, so they hold
/// their random initialisation, which no prompt of the world reads.
fn zero_unused_rows(weights: &mut BTreeMap<String, Tensor>, used: &BTreeSet<i64>) {
    let table = weights
        .get_mut("token_embedding.weight")
        .expect("a text tower");
    let mut keep = Tensor::zeros([table.size()[0]], (Kind::Float, Device::Cpu));
    let ids: Vec<i64> = used.iter().copied().collect();
    let _ = keep.index_fill_(0, &Tensor::from_slice(&ids), 1.0);
    *table = &*table * keep.unsqueeze(1);
}

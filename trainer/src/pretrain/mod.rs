//! Pretraining of a small CLIP on the images a package registry ships (Debian's Fashion-MNIST),
//! so that zero-shot classification works and prompt tuning has something real to tune: the
//! tool's embedded default model, and a toy CLIP for fast method development.
//!
//! The model is the crate's own CLIP (`crate::clip`) over trainable tensors, so what is trained
//! is exactly what every command later loads; the weights are written in OpenAI's key layout.
//! Losses, summed: cross-entropy of each image against one caption per class (see `captions`),
//! against the 40 (class, attribute) captions, and an auxiliary linear head on the image
//! embedding that is discarded afterwards. AdamW with linear warm-up then cosine decay.
pub mod captions;
pub mod corpus;
pub mod probe;

use crate::clip::config::{ClipConfig, TextConfig, VisionConfig, VitConfig};
use crate::clip::random_init::{generate, Spec};
use crate::clip::tokenizer::{Tokenizer, EOT};
use crate::clip::{normalize, Clip, ClipError};
use crate::data::fashion_mnist::{idx_path, read_set, CLASSNAMES, PRETRAIN_IMAGES};
use crate::data::transforms::{TestTransform, TrainTransform};
use crate::data::{DataError, PyRandom};
use captions::{Caption, CaptionConfig, CaptionSampler};
use corpus::Corpus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    #[error(transparent)]
    Data(#[from] DataError),
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

/// The architecture: OpenAI's layout, ViT image tower, 64-wide heads.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub embed_dim: i64,
    pub width: i64,
    pub text_layers: i64,
    pub vision_layers: i64,
    pub patch: i64,
    pub resolution: i64,
}

impl Architecture {
    pub fn spec(&self) -> Spec {
        Spec {
            embed_dim: self.embed_dim,
            text: TextConfig {
                width: self.width,
                layers: self.text_layers,
                heads: self.width / 64,
                context_length: 77,
                vocab_size: 49408,
            },
            vision: VisionConfig::Vit(VitConfig {
                width: self.width,
                layers: self.vision_layers,
                heads: self.width / 64,
                patch: self.patch,
                resolution: self.resolution,
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub seed: u64,
    pub epochs: usize,
    /// Images of the corpus: the train file's first `images` (at most 50,000).
    pub images: usize,
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
    pub architecture: Architecture,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            seed: 0,
            epochs: 5,
            images: PRETRAIN_IMAGES,
            batch_size: 128,
            lr: 1e-3,
            warmup_steps: 100,
            weight_decay: 0.1,
            betas: (0.9, 0.98),
            eps: 1e-6,
            augment_p: 0.5,
            captions: CaptionConfig::default(),
            architecture: Architecture {
                embed_dim: 64,
                width: 64,
                text_layers: 4,
                vision_layers: 4,
                patch: 8,
                resolution: 32,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LossPoint {
    pub step: usize,
    pub loss: f64,
}

/// What `model_card.json` beside the weights says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub tool: String,
    pub version: String,
    /// Digest of the config, the source files' contents and the tool version: the model is
    /// remade only when it changes.
    pub inputs_digest: String,
    pub config: PretrainConfig,
    pub data: DataCard,
    pub architecture: ClipConfig,
    pub parameters: i64,
    pub steps: usize,
    pub threads: i32,
    pub loss_curve: Vec<LossPoint>,
    pub logit_scale: f64,
    pub quality: probe::Quality,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataCard {
    pub source: String,
    /// SHA-256 of each idx file read.
    pub files: BTreeMap<String, String>,
    pub pretrain: String,
    pub probe_train: String,
    pub test: String,
    pub classes: Vec<String>,
}

const IDX_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The digest a finished model's card must carry for it to be reused.
pub fn inputs_digest(cfg: &PretrainConfig, source: &Path) -> Result<Inputs, PretrainError> {
    let mut files = BTreeMap::new();
    for stem in IDX_STEMS {
        let p = idx_path(source, stem)?;
        let d = crate::digest::file_digest(&p).map_err(|e| crate::io::IoError::new(&p, e))?;
        files.insert(stem.to_string(), d);
    }
    let digest = crate::digest::digest_json(&(cfg, &files, env!("CARGO_PKG_VERSION")));
    Ok((digest, files))
}

/// Token ids (cut after the longest EOT: the causal mask makes later positions irrelevant) and
/// embeddings of captions, with the random context vectors in place.
fn caption_inputs(
    clip: &Clip,
    tok: &Tokenizer,
    caps: &[Caption],
) -> Result<(Tensor, Tensor), ClipError> {
    let texts: Vec<&str> = caps.iter().map(|c| c.text.as_str()).collect();
    let rows = tok.tokenize_all(&texts, clip.config.text.context_length as usize, false)?;
    let eot = |r: &Vec<i64>| {
        r.iter()
            .position(|&t| t == EOT as i64)
            .expect("tokenize adds EOT")
    };
    let len = rows.iter().map(eot).max().unwrap_or(0) + 1;
    let n = rows.len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r[..len].to_vec()).collect();
    let ids = Tensor::from_slice(&flat).view([n as i64, len as i64]);
    let emb = clip.text.embed_tokens(&ids);
    if caps.iter().all(|c| c.context.is_none()) {
        return Ok((ids, emb));
    }
    let mut mask = vec![0f32; n * len];
    let mut std = vec![0f32; n];
    for (i, c) in caps.iter().enumerate() {
        if let Some((k, s)) = c.context {
            mask[i * len + 1..=i * len + k].fill(1.0);
            std[i] = s as f32;
        }
    }
    let mask = Tensor::from_slice(&mask).view([n as i64, len as i64, 1]);
    let std = Tensor::from_slice(&std).view([n as i64, 1, 1]);
    let noise = emb.randn_like() * std;
    let emb = &emb * (1.0 - &mask) + noise * &mask;
    Ok((ids, emb))
}

/// Learning rate at `step`: linear warm-up, then cosine to zero.
fn lr_at(cfg: &PretrainConfig, step: usize, total: usize) -> f64 {
    if step < cfg.warmup_steps {
        return cfg.lr * (step + 1) as f64 / cfg.warmup_steps as f64;
    }
    let t = (step - cfg.warmup_steps) as f64 / (total - cfg.warmup_steps).max(1) as f64;
    0.5 * cfg.lr * (1.0 + (std::f64::consts::PI * t).cos())
}

/// The digest [`inputs_digest`] gives and the per-file digests behind it.
pub type Inputs = (String, BTreeMap<String, String>);

/// Pretrains a CLIP on the idx files in `source`; returns its weights (OpenAI layout) and card.
/// `inputs` is what [`inputs_digest`] gave for them (the caller has it from its up-to-date
/// check); `progress(step, total, loss)` is called after every step.
pub fn pretrain(
    cfg: &PretrainConfig,
    source: &Path,
    inputs: Inputs,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<(BTreeMap<String, Tensor>, ModelCard), PretrainError> {
    let started = std::time::Instant::now();
    if cfg.images == 0 || cfg.images > PRETRAIN_IMAGES || cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(PretrainError::Config(format!(
            "need 1..={PRETRAIN_IMAGES} images, a positive batch size and epochs (got images {}, batch {}, epochs {})",
            cfg.images, cfg.batch_size, cfg.epochs
        )));
    }
    let (inputs_digest, files) = inputs;
    let train_set = read_set(source, "train")?;
    let corpus = Corpus::new(&train_set, 0..cfg.images);
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
        vars.insert(key.clone(), path.add(name, t, true));
    }
    let clip = Clip::trainable(
        vars.iter()
            .map(|(k, v)| (k.clone(), v.shallow_clone()))
            .collect(),
        Device::Cpu,
    )?;
    let logit_scale = vars["logit_scale"].shallow_clone();
    let head = nn::linear(
        vs.root().set_group(0) / "pretrain_head",
        spec.embed_dim,
        CLASSNAMES.len() as i64,
        Default::default(),
    );
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

    let r = cfg.architecture.resolution as usize;
    let aug = TrainTransform::new(r).map_err(|e| PretrainError::Config(e.to_string()))?;
    let test_t = TestTransform::new(r).map_err(|e| PretrainError::Config(e.to_string()))?;
    let tok = Tokenizer::new();
    let mut sampler = CaptionSampler::new(cfg.captions, cfg.seed);
    let mut order_rng = PyRandom::new(cfg.seed);
    let labels = Tensor::from_slice(&corpus.labels);
    let attr_labels = Tensor::from_slice(&corpus.attributes) + &labels * 4;
    let per_epoch = (corpus.len() / cfg.batch_size).max(1);
    let total = per_epoch * cfg.epochs;
    let every = (total / 100).max(1);
    let (mut curve, mut window, mut step) = (Vec::new(), Vec::new(), 0);
    for epoch in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..corpus.len()).collect();
        order_rng.shuffle(&mut order);
        for b in 0..per_epoch {
            let idx = &order[b * cfg.batch_size..((b + 1) * cfg.batch_size).min(order.len())];
            let key = cfg.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
            let px = corpus.train_pixels(&aug, &test_t, cfg.augment_p, key, idx);
            let sel = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
            let (y, ya) = (
                labels.index_select(0, &sel),
                attr_labels.index_select(0, &sel),
            );
            let img = clip.encode_image(&px);
            let img_n = normalize(&img);
            let mut caps = sampler.class_captions();
            caps.extend(sampler.attribute_captions());
            let (ids, emb) = caption_inputs(&clip, &tok, &caps)?;
            let text = normalize(&clip.text.encode_embeddings(&emb, &ids));
            let scale = logit_scale.exp();
            let n_cls = CLASSNAMES.len() as i64;
            let class_logits = img_n.matmul(&text.narrow(0, 0, n_cls).tr()) * &scale;
            let attr_logits = img_n.matmul(&text.narrow(0, n_cls, 4 * n_cls).tr()) * &scale;
            let loss = class_logits.cross_entropy_for_logits(&y)
                + attr_logits.cross_entropy_for_logits(&ya)
                + img.apply(&head).cross_entropy_for_logits(&y);
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
            step += 1;
            if window.len() == every || step == total {
                curve.push(LossPoint {
                    step,
                    loss: window.iter().sum::<f64>() / window.len() as f64,
                });
                window.clear();
            }
            progress(step, total, value);
        }
    }
    drop(clip);
    let weights: BTreeMap<String, Tensor> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.detach().copy()))
        .collect();
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
    let probe_train = Corpus::new(&train_set, PRETRAIN_IMAGES..train_set.len());
    let test = Corpus::new(&read_set(source, "t10k")?, 0..usize::MAX);
    let quality = probe::measure(&frozen, &probe_train, &test)?;
    let card = ModelCard {
        tool: "subpt-bench pretrain".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        inputs_digest,
        config: cfg.clone(),
        data: DataCard {
            source: source.display().to_string(),
            files,
            pretrain: format!("train[0:{}]", cfg.images),
            probe_train: format!("train[{PRETRAIN_IMAGES}:{}]", train_set.len()),
            test: format!("t10k[0:{}]", test.len()),
            classes: CLASSNAMES.iter().map(|s| s.to_string()).collect(),
        },
        architecture: frozen.config.clone(),
        parameters: frozen.parameters,
        steps: total,
        threads: tch::get_num_threads(),
        loss_curve: curve,
        logit_scale: frozen.logit_scale,
        quality,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    Ok((weights, card))
}

//! CLIP as OpenAI defines it, in tch: the same function as `clip.model.CLIP` for every
//! architecture its `build_model` accepts, loaded from OpenAI, open_clip or Hugging Face weights.
pub mod config;
pub mod layers;
pub mod random_init;
pub mod resnet;
pub mod text;
pub mod text_fast;
/// PyTorch checkpoints read without libtorch (in the pickle crate).
pub use subpt_pickle::torch_archive;
/// CLIP's tokenizer, a crate of its own (no libtorch).
pub use subpt_tokenizer as tokenizer;
pub mod vit;
pub mod weights;
mod weights_hf;

use config::{ClipConfig, VisionConfig};
use layers::Params;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("missing tensor `{0}` in the weights")]
    MissingKey(String),
    #[error("tensor `{key}` has shape {found:?}, expected {expected:?}")]
    Shape {
        key: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("cannot infer the CLIP architecture: {0}")]
    Config(String),
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    #[error(transparent)]
    Io(#[from] subpt_io::IoError),
    #[error(transparent)]
    Archive(#[from] torch_archive::ArchiveError),
    #[error(transparent)]
    Tokenizer(#[from] tokenizer::TokenizerError),
    #[error("{0}")]
    Torch(#[from] tch::TchError),
}

impl ClipError {
    /// Prefixes a weights-content error with the file it came from.
    pub fn in_file(self, path: &Path) -> ClipError {
        match self {
            e @ (ClipError::Format { .. } | ClipError::Io(_) | ClipError::Archive(_)) => e,
            e => ClipError::Format {
                path: path.display().to_string(),
                msg: e.to_string(),
            },
        }
    }
}

/// Compute precision of the frozen towers. LayerNorm and BatchNorm always run in fp32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Bf16,
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Fp16 => Kind::Half,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Precision::Fp32),
            "fp16" | "float16" | "half" => Ok(Precision::Fp16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision `{s}` (fp32, fp16 or bf16)")),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
        })
    }
}

pub enum ImageTower {
    Vit(vit::VisionTransformer),
    ResNet(resnet::ModifiedResNet),
}

/// A frozen CLIP model. Outputs are unnormalised features in fp32.
pub struct Clip {
    pub config: ClipConfig,
    pub text: text::TextTower,
    pub visual: ImageTower,
    /// `exp(logit_scale)` as stored in the weights (about 100 for OpenAI's models).
    pub logit_scale: f64,
    pub precision: Precision,
    pub device: Device,
    /// Parameter count as PyTorch's `model.parameters()` gives it (BatchNorm statistics excluded).
    pub parameters: i64,
}

impl Clip {
    /// Loads a weights file (any supported format and layout) onto `device`.
    pub fn load(path: &Path, precision: Precision, device: Device) -> Result<Self, ClipError> {
        let w = weights::load(path)?;
        Self::from_tensors(w.tensors, w.activation, precision, device).map_err(|e| e.in_file(path))
    }

    /// Builds the model from tensors in OpenAI's key layout.
    pub fn from_tensors(
        tensors: std::collections::BTreeMap<String, Tensor>,
        activation: config::Activation,
        precision: Precision,
        device: Device,
    ) -> Result<Self, ClipError> {
        let p = Params::new(tensors, precision.kind(), device);
        Self::from_params(p, activation, precision)
    }

    /// The model over tensors that keep their autograd identity (fp32 on `device`), so the
    /// same forward code trains them: see the trainer's `pretrain`.
    pub fn trainable(
        tensors: std::collections::BTreeMap<String, Tensor>,
        device: Device,
    ) -> Result<Self, ClipError> {
        let p = Params::trainable(tensors, device);
        Self::from_params(p, config::Activation::QuickGelu, Precision::Fp32)
    }

    fn from_params(
        mut p: Params,
        activation: config::Activation,
        precision: Precision,
    ) -> Result<Self, ClipError> {
        let device = p.device();
        let config = ClipConfig::from_shapes(&p.shapes(), activation)?;
        let text = text::TextTower::load(p.root(), &config.text, config.embed_dim, activation)?;
        let visual = match &config.vision {
            VisionConfig::Vit(c) => ImageTower::Vit(vit::VisionTransformer::load(
                p.root().pp("visual"),
                c,
                config.embed_dim,
                activation,
            )?),
            VisionConfig::ResNet(c) => ImageTower::ResNet(resnet::ModifiedResNet::load(
                p.root().pp("visual"),
                c,
                config.embed_dim,
            )?),
        };
        let logit_scale = p.get_f32("logit_scale", &[])?.exp().double_value(&[]);
        for k in ["input_resolution", "context_length", "vocab_size"] {
            p.discard(k);
        }
        let unused = p.unused();
        if !unused.is_empty() {
            tracing::warn!(count = unused.len(), first = %unused[0], "weights hold tensors CLIP does not use");
        }
        Ok(Clip {
            config,
            text,
            visual,
            logit_scale,
            precision,
            device,
            parameters: p.parameter_count(),
        })
    }

    /// Text features [N, embed] (fp32, unnormalised) of token ids [N, context_length].
    pub fn encode_text(&self, ids: &Tensor) -> Tensor {
        self.text
            .encode(&ids.to_device(self.device))
            .to_kind(Kind::Float)
    }

    /// Image features [N, embed] (fp32, unnormalised) of preprocessed pixels [N, 3, R, R].
    pub fn encode_image(&self, pixels: &Tensor) -> Tensor {
        self.encode_image_raw(pixels).to_kind(Kind::Float)
    }

    /// [`Clip::encode_image`] in the tower's own precision (fp16 towers give fp16, which
    /// casts to the same fp32 values `encode_image` returns).
    pub fn encode_image_raw(&self, pixels: &Tensor) -> Tensor {
        let x = pixels.to_device(self.device);
        match &self.visual {
            ImageTower::Vit(v) => v.forward(&x),
            ImageTower::ResNet(r) => r.forward(&x),
        }
    }

    /// Tokenizes texts (errors on over-long ones unless `truncate`) into ids [N, context_length].
    pub fn tokenize(
        &self,
        tok: &tokenizer::Tokenizer,
        texts: &[impl AsRef<str>],
        truncate: bool,
    ) -> Result<Tensor, ClipError> {
        let ctx = self.config.text.context_length as usize;
        let rows = texts
            .iter()
            .map(|t| tok.tokenize(t.as_ref(), ctx, truncate))
            .collect::<Result<Vec<_>, _>>()?;
        let flat: Vec<i64> = rows.concat();
        Ok(Tensor::from_slice(&flat).view([texts.len() as i64, ctx as i64]))
    }
}

/// Whether every element is finite (no NaN, no infinity).
pub fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) == 1
}

/// L2-normalises rows.
pub fn normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2.0, [-1], true)
}

/// CLIP's classifier head: `exp(logit_scale) * norm(img) @ norm(txt)^T`.
pub fn logits(clip: &Clip, image_features: &Tensor, text_features: &Tensor) -> Tensor {
    normalize(image_features).matmul(&normalize(text_features).tr()) * clip.logit_scale
}

/// Top-1 correct count of `logits` against `labels`.
pub fn correct(logits: &Tensor, labels: &Tensor) -> i64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(tch::Kind::Int64)
        .sum(tch::Kind::Int64)
        .int64_value(&[])
}

//! Architecture hyper-parameters, inferred from the shapes in a state dict exactly as OpenAI's
//! `build_model` does, so any checkpoint in OpenAI's key layout describes itself.
use super::ClipError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Key -> shape of every tensor in a state dict (OpenAI layout).
pub type Shapes = BTreeMap<String, Vec<i64>>;

/// The MLP non-linearity. OpenAI's checkpoints use QuickGELU; many open_clip / Hugging Face
/// re-trainings use exact GELU, which only a sidecar config can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    QuickGelu,
    Gelu,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextConfig {
    pub width: i64,
    pub layers: i64,
    pub heads: i64,
    pub context_length: i64,
    pub vocab_size: i64,
}

/// A Vision Transformer image tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VitConfig {
    pub width: i64,
    pub layers: i64,
    pub heads: i64,
    pub patch: i64,
    pub resolution: i64,
}

/// CLIP's modified ResNet image tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    pub width: i64,
    /// Bottlenecks per stage.
    pub layers: [i64; 4],
    /// Heads of the attention pool.
    pub heads: i64,
    pub resolution: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VisionConfig {
    Vit(VitConfig),
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
}

impl VisionConfig {
    pub fn resolution(&self) -> i64 {
        match self {
            VisionConfig::Vit(c) => c.resolution,
            VisionConfig::ResNet(c) => c.resolution,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub embed_dim: i64,
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub activation: Activation,
}

fn shape<'a>(shapes: &'a Shapes, key: &str) -> Result<&'a [i64], ClipError> {
    shapes
        .get(key)
        .map(Vec::as_slice)
        .ok_or_else(|| ClipError::MissingKey(key.to_string()))
}

fn dim(shapes: &Shapes, key: &str, rank: usize, axis: usize) -> Result<i64, ClipError> {
    let s = shape(shapes, key)?;
    if s.len() != rank {
        return Err(ClipError::Config(format!(
            "key {key}: expected a rank-{rank} tensor, found shape {s:?}"
        )));
    }
    Ok(s[axis])
}

/// Number of distinct values of the dotted component at `index` among keys with `prefix`.
fn count_distinct(shapes: &Shapes, prefix: &str, index: usize) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for k in shapes.keys().filter(|k| k.starts_with(prefix)) {
        if let Some(part) = k.split('.').nth(index) {
            seen.insert(part.to_string());
        }
    }
    seen.len()
}

fn heads_of(width: i64, what: &str) -> Result<i64, ClipError> {
    if width % 64 != 0 || width == 0 {
        return Err(ClipError::Config(format!(
            "{what} width {width} is not a multiple of 64 (CLIP uses 64-wide heads)"
        )));
    }
    Ok(width / 64)
}

impl ClipConfig {
    /// Infers the architecture the way OpenAI's `build_model` does (spec §1.1).
    pub fn from_shapes(shapes: &Shapes, activation: Activation) -> Result<Self, ClipError> {
        let embed_dim = dim(shapes, "text_projection", 2, 1)?;
        let width = dim(shapes, "ln_final.weight", 1, 0)?;
        let text = TextConfig {
            width,
            layers: count_distinct(shapes, "transformer.resblocks.", 2) as i64,
            heads: heads_of(width, "text")?,
            context_length: dim(shapes, "positional_embedding", 2, 0)?,
            vocab_size: dim(shapes, "token_embedding.weight", 2, 0)?,
        };
        if text.layers == 0 {
            return Err(ClipError::MissingKey("transformer.resblocks.0.*".into()));
        }
        let vision = if shapes.contains_key("visual.proj") {
            let width = dim(shapes, "visual.conv1.weight", 4, 0)?;
            let patch = dim(shapes, "visual.conv1.weight", 4, 3)?;
            let tokens = dim(shapes, "visual.positional_embedding", 2, 0)?;
            let grid = ((tokens - 1) as f64).sqrt().round() as i64;
            if grid * grid + 1 != tokens {
                return Err(ClipError::Config(format!(
                    "key visual.positional_embedding: {tokens} rows is not a square grid plus one"
                )));
            }
            let layers = shapes
                .keys()
                .filter(|k| k.starts_with("visual.") && k.ends_with(".attn.in_proj_weight"))
                .count() as i64;
            VisionConfig::Vit(VitConfig {
                width,
                layers,
                heads: heads_of(width, "vision")?,
                patch,
                resolution: patch * grid,
            })
        } else {
            let mut layers = [0i64; 4];
            for (b, l) in layers.iter_mut().enumerate() {
                *l = count_distinct(shapes, &format!("visual.layer{}.", b + 1), 2) as i64;
                if *l == 0 {
                    return Err(ClipError::MissingKey(format!(
                        "visual.proj (ViT) or visual.layer{}.* (ResNet)",
                        b + 1
                    )));
                }
            }
            let width = dim(shapes, "visual.layer1.0.conv1.weight", 4, 0)?;
            let tokens = dim(shapes, "visual.attnpool.positional_embedding", 2, 0)?;
            let out_w = ((tokens - 1) as f64).sqrt().round() as i64;
            if out_w * out_w + 1 != tokens {
                return Err(ClipError::Config(format!(
                    "key visual.attnpool.positional_embedding: {tokens} rows is not a square grid plus one"
                )));
            }
            VisionConfig::ResNet(ResNetConfig {
                width,
                layers,
                heads: width * 32 / 64,
                resolution: out_w * 32,
            })
        };
        Ok(ClipConfig {
            embed_dim,
            text,
            vision,
            activation,
        })
    }
}

//! Reads CLIP weights from any file a researcher is likely to hold and returns them in OpenAI's
//! key layout: OpenAI's TorchScript archives, `torch.save` state dicts or training checkpoints
//! (nested under `state_dict`, `module.`-prefixed), and safetensors in OpenAI / open_clip /
//! Hugging Face `CLIPModel` layouts (a Hugging Face folder with `config.json` works too).
use super::config::Activation;
use super::torch_archive::{self, DType, RawTensor};
use super::ClipError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Torchscript,
    Torch,
    Safetensors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// OpenAI's keys; open_clip's `CLIP` class uses the same ones.
    Openai,
    /// open_clip's `CustomTextCLIP` (text tower under `text.`).
    OpenClip,
    /// Hugging Face `CLIPModel` (`text_model.*`, `vision_model.*`, separate q/k/v).
    Hf,
}

pub struct Weights {
    pub format: Format,
    pub layout: Layout,
    pub activation: Activation,
    /// Tensors in OpenAI's key layout, as stored (dtype unchanged).
    pub tensors: BTreeMap<String, Tensor>,
}

fn io_err(path: &Path, source: std::io::Error) -> ClipError {
    ClipError::Io(subpt_io::IoError::new(path, source))
}

fn format_err(path: &Path, msg: impl Into<String>) -> ClipError {
    ClipError::Format {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Loads `path` (a file, or a Hugging Face model folder).
pub fn load(path: &Path) -> Result<Weights, ClipError> {
    let (files, hf_config) = resolve_files(path)?;
    let mut raw = Vec::new();
    let mut format = Format::Safetensors;
    for f in &files {
        let (fmt, tensors) = read_file(f)?;
        format = fmt;
        raw.extend(tensors);
    }
    let (layout, tensors) = to_openai_layout(raw).map_err(|m| format_err(path, m))?;
    // A NaN or Inf weight makes every later number meaningless (and argmax of NaN logits still
    // "predicts" a class), so it is refused here, naming the tensor.
    if let Some((key, _)) = tensors
        .iter()
        .find(|(_, t)| t.is_floating_point() && !super::all_finite(t))
    {
        return Err(format_err(
            path,
            format!("tensor `{key}` holds NaN or infinite values"),
        ));
    }
    let activation = match hf_config {
        Some(cfg) => hf_activation(&cfg)?,
        None => Activation::QuickGelu,
    };
    Ok(Weights {
        format,
        layout,
        activation,
        tensors,
    })
}

/// The files to read and, for Hugging Face folders or files beside a `config.json`, that config.
fn resolve_files(path: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>), ClipError> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io_err(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format_err(path, "folder holds no .safetensors file"));
        }
        let cfg = path.join("config.json");
        return Ok((files, cfg.exists().then_some(cfg)));
    }
    if !path.exists() {
        return Err(io_err(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such weights file"),
        ));
    }
    let cfg = path.with_file_name("config.json");
    Ok((vec![path.to_path_buf()], cfg.exists().then_some(cfg)))
}

fn hf_activation(cfg: &Path) -> Result<Activation, ClipError> {
    let text = std::fs::read_to_string(cfg).map_err(|e| io_err(cfg, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format_err(cfg, format!("invalid JSON: {e}")))?;
    let act = v
        .pointer("/text_config/hidden_act")
        .or_else(|| v.pointer("/vision_config/hidden_act"))
        .and_then(|a| a.as_str())
        .unwrap_or("quick_gelu");
    match act {
        "quick_gelu" => Ok(Activation::QuickGelu),
        "gelu" => Ok(Activation::Gelu),
        other => Err(format_err(
            cfg,
            format!("hidden_act `{other}` is not supported (quick_gelu or gelu)"),
        )),
    }
}

fn read_file(path: &Path) -> Result<(Format, Vec<(String, Tensor)>), ClipError> {
    let mut bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    // Gzip-compressed safetensors (the shipped embedded CLIP: its unused token rows are zeros).
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format_err(path, format!("not a readable gzip file: {e}")))?;
        if !looks_like_safetensors(&out) {
            return Err(format_err(path, "a gzip file that holds no safetensors"));
        }
        bytes = out;
        return Ok((Format::Safetensors, read_safetensors(path, &bytes)?));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let format = if is_torchscript(&bytes) {
            Format::Torchscript
        } else {
            Format::Torch
        };
        drop(bytes);
        let tensors = torch_archive::read_tensors(path)?
            .into_iter()
            .map(|(k, t)| Ok((k, raw_to_tensor(&t).map_err(|m| format_err(path, m))?)))
            .collect::<Result<_, ClipError>>()?;
        return Ok((format, tensors));
    }
    if looks_like_safetensors(&bytes) {
        return Ok((Format::Safetensors, read_safetensors(path, &bytes)?));
    }
    if bytes.first() == Some(&0x80) {
        // Pre-1.6 `torch.save` files are bare pickles; the archive reader says whether it can.
        let tensors = torch_archive::read_tensors(path)?
            .into_iter()
            .map(|(k, t)| Ok((k, raw_to_tensor(&t).map_err(|m| format_err(path, m))?)))
            .collect::<Result<_, ClipError>>()?;
        return Ok((Format::Torch, tensors));
    }
    Err(format_err(
        path,
        "not a weights file: expected a PyTorch archive (.pt/.pth), a TorchScript archive or safetensors",
    ))
}

/// TorchScript archives carry their code; `torch.save` archives do not.
fn is_torchscript(bytes: &[u8]) -> bool {
    let Ok(zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return false;
    };
    let found = zip
        .file_names()
        .any(|n| n.ends_with("/constants.pkl") || n.contains("/code/"));
    found
}

fn looks_like_safetensors(bytes: &[u8]) -> bool {
    if bytes.len() < 9 {
        return false;
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    n > 1 && (n as usize) <= bytes.len() - 8 && bytes[8] == b'{'
}

fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Tensor)>, ClipError> {
    use safetensors::Dtype as D;
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format_err(path, format!("invalid safetensors: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let kind = match view.dtype() {
            D::F64 => Kind::Double,
            D::F32 => Kind::Float,
            D::F16 => Kind::Half,
            D::BF16 => Kind::BFloat16,
            D::I64 => Kind::Int64,
            D::I32 => Kind::Int,
            D::I16 => Kind::Int16,
            D::I8 => Kind::Int8,
            D::U8 => Kind::Uint8,
            D::BOOL => Kind::Bool,
            other => {
                return Err(format_err(
                    path,
                    format!("tensor `{name}` has unsupported dtype {other:?}"),
                ))
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.push((name, Tensor::from_data_size(view.data(), &shape, kind)));
    }
    Ok(out)
}

fn raw_to_tensor(t: &RawTensor) -> Result<Tensor, String> {
    let kind = match t.dtype {
        DType::F64 => Kind::Double,
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::I16 => Kind::Int16,
        DType::I8 => Kind::Int8,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
    };
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Tensor::f_from_data_size(&t.data, &shape, kind).map_err(|e| e.to_string())
}

/// Finds the model inside whatever wraps it and renames keys to OpenAI's layout.
fn to_openai_layout(
    raw: Vec<(String, Tensor)>,
) -> Result<(Layout, BTreeMap<String, Tensor>), String> {
    const HF_ANCHOR: &str = "text_model.embeddings.token_embedding.weight";
    const ANCHOR: &str = "token_embedding.weight";
    if let Some(k) = raw.iter().map(|(k, _)| k).find(|k| k.ends_with(HF_ANCHOR)) {
        let root = k[..k.len() - HF_ANCHOR.len()].to_string();
        return Ok((Layout::Hf, super::weights_hf::convert(raw, &root)?));
    }
    let Some(k) = raw.iter().map(|(k, _)| k).find(|k| k.ends_with(ANCHOR)) else {
        return Err(format!(
            "no CLIP text tower found (no key ending in `{ANCHOR}` or `{HF_ANCHOR}`)"
        ));
    };
    let prefix = k[..k.len() - ANCHOR.len()].to_string();
    // open_clip's CustomTextCLIP keeps the text tower under `text.` beside `visual.`.
    let (root, text_prefix, layout) = match prefix.strip_suffix("text.") {
        Some(root)
            if raw
                .iter()
                .any(|(k, _)| k.starts_with(&format!("{root}visual."))) =>
        {
            (root.to_string(), prefix.clone(), Layout::OpenClip)
        }
        _ => (prefix.clone(), prefix.clone(), Layout::Openai),
    };
    let layout = if layout == Layout::Openai && root.ends_with("module.") {
        Layout::OpenClip
    } else {
        layout
    };
    let mut out = BTreeMap::new();
    for (k, t) in raw {
        let key = if let Some(rest) = k.strip_prefix(&text_prefix) {
            rest.to_string()
        } else if let Some(rest) = k.strip_prefix(&root) {
            rest.to_string()
        } else {
            continue;
        };
        out.insert(key, t);
    }
    Ok((layout, out))
}

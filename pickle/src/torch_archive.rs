//! Reader for PyTorch checkpoint files, without libtorch.
//!
//! Reads the tensors of
//! - `torch.save` zip archives (`<name>/data.pkl` + `<name>/data/<key>` storages): state dicts,
//!   nested checkpoints (`{"state_dict": {...}, "epoch": 3}` gives keys `state_dict.<k>`),
//!   lists, and whole pickled `nn.Module`s (named as their `state_dict()`);
//! - TorchScript archives written by `torch.jit.save` (OpenAI's CLIP `.pt` files): keys are
//!   the module's `state_dict()` keys, parameters and buffers alike (libtorch's `CModule` in tch
//!   does not expose buffers such as BatchNorm running statistics);
//! - the legacy pre-1.6 `torch.save` stream format (`_use_new_zipfile_serialization=False`).
//!
//! Non-contiguous views (transposes, slices with offsets, expanded dims) are copied out into
//! contiguous row-major bytes; keys sharing one storage each get their own copy. Nothing in the
//! file is executed: the pickles are decoded by this crate's reader into plain values.
use crate as pickle;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

mod legacy;
mod tensor;
mod walk;

use tensor::TensorRef;

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }
}

/// A tensor read from an archive: contiguous row-major little-endian bytes.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    #[error(transparent)]
    Io(#[from] subpt_io::IoError),
}

/// Every tensor in the archive with its dotted key (state-dict keys for TorchScript modules),
/// in the order the checkpoint defines (dict order; `state_dict()` order for TorchScript).
pub fn read_tensors(path: &Path) -> Result<Vec<(String, RawTensor)>, ArchiveError> {
    let shown = path.display().to_string();
    let format = |msg: String| ArchiveError::Format {
        path: shown.clone(),
        msg,
    };
    let io = |source| ArchiveError::Io(subpt_io::IoError::new(path, source));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 512];
    let n = read_up_to(&mut file, &mut head).map_err(io)?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return read_zip(file).map_err(format);
    }
    if head.first() == Some(&0x80) {
        let data = std::fs::read(path).map_err(io)?;
        return legacy::read(&data).map_err(format);
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return Err(format(
            "a tar-format torch checkpoint (PyTorch before 0.4); re-save it with a current torch"
                .into(),
        ));
    }
    Err(format(if head.is_empty() {
        "empty file, not a PyTorch checkpoint".into()
    } else {
        "not a PyTorch checkpoint: neither a zip archive nor a pickle".into()
    }))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn read_zip(file: std::fs::File) -> Result<Vec<(String, RawTensor)>, String> {
    let mut zip =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable zip archive: {e}"))?;
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    // Every record sits under one top folder named after the archive (`ViT-B-16/`, `archive/`).
    let prefix = names
        .iter()
        .filter_map(|n| n.strip_suffix("data.pkl"))
        .find(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
        .map(str::to_string)
        .ok_or("zip archive without data.pkl: not a PyTorch checkpoint".to_string())?;
    let mut entry = |name: &str| -> Result<Vec<u8>, String> {
        let full = format!("{prefix}{name}");
        let mut f = zip
            .by_name(&full)
            .map_err(|e| format!("record {full}: {e}"))?;
        let mut buf = Vec::with_capacity(f.size().min(1 << 32) as usize);
        f.read_to_end(&mut buf)
            .map_err(|e| format!("record {full} is unreadable: {e}"))?;
        Ok(buf)
    };
    let root = pickle::read(&entry("data.pkl")?).map_err(|e| format!("{prefix}data.pkl: {e}"))?;
    let big_endian =
        names.contains(&format!("{prefix}byteorder")) && entry("byteorder")?.trim_ascii() == b"big";
    let mut found = Vec::new();
    if walk::is_script_object(&root) {
        let mut classes = walk::Classes::new();
        let code_dir = format!("{prefix}code/");
        for name in &names {
            let Some(module) = name
                .strip_prefix(&code_dir)
                .and_then(|m| m.strip_suffix(".py"))
            else {
                continue;
            };
            let source = entry(&name[prefix.len()..])?;
            walk::parse_code(
                &module.replace('/', "."),
                &String::from_utf8_lossy(&source),
                &mut classes,
            );
        }
        walk::script(&root, "", &classes, &mut found)?;
    } else {
        walk::saved(&root, "", &mut found)?;
    }
    assemble(found, big_endian, |key| {
        entry(&format!("data/{key}"))
            .map(Cow::Owned)
            .map_err(|e| format!("storage {key}: {e}"))
    })
}

/// Reads each storage once and copies every tensor out of it, in the walk's order.
fn assemble<'a>(
    found: Vec<(String, TensorRef)>,
    big_endian: bool,
    mut load: impl FnMut(&str) -> Result<Cow<'a, [u8]>, String>,
) -> Result<Vec<(String, RawTensor)>, String> {
    let mut users: Vec<(String, Vec<usize>)> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for (i, (_, t)) in found.iter().enumerate() {
        let key = t.storage.key.as_str();
        let s = *slot.entry(key).or_insert_with(|| {
            users.push((key.to_string(), Vec::new()));
            users.len() - 1
        });
        users[s].1.push(i);
    }
    let mut out: Vec<Option<RawTensor>> = vec![None; found.len()];
    for (key, idx) in users {
        let mut bytes =
            load(&key).map_err(|e| format!("{e} (needed by tensor '{}')", found[idx[0]].0))?;
        let need = idx
            .iter()
            .map(|&i| found[i].1.storage.byte_offset + found[i].1.storage.nbytes)
            .max()
            .unwrap_or(0);
        if bytes.len() < need {
            return Err(format!(
                "storage {key} (of tensor '{}') is truncated: needs {need} bytes, has {}",
                found[idx[0]].0,
                bytes.len()
            ));
        }
        for (n, &i) in idx.iter().enumerate() {
            let (name, t) = &found[i];
            let s = &t.storage;
            let whole = t.is_contiguous() && t.offset == 0 && s.byte_offset == 0;
            let mut data = if n + 1 == idx.len() && whole {
                // The last user of a storage that it covers from the start takes the bytes.
                t.check_bounds()
                    .map_err(|e| format!("tensor '{name}': {e}"))?;
                let len = t.numel().unwrap_or(0) * t.dtype.size();
                let mut v = std::mem::take(&mut bytes).into_owned();
                v.truncate(len);
                v
            } else {
                t.materialise(&bytes[s.byte_offset..s.byte_offset + s.nbytes])
                    .map_err(|e| format!("tensor '{name}': {e}"))?
            };
            if big_endian {
                for chunk in data.chunks_exact_mut(t.dtype.size()) {
                    chunk.reverse();
                }
            }
            out[i] = Some(RawTensor {
                dtype: t.dtype,
                shape: t.shape.clone(),
                data,
            });
        }
    }
    Ok(found
        .into_iter()
        .zip(out)
        .map(|((k, _), t)| (k, t.expect("every tensor belongs to one storage")))
        .collect())
}

//! Recognising pickled tensors and copying their views out of storage bytes.
use super::DType;
use crate::{Object, Value};

/// Where a tensor's elements live: a storage record of the archive.
#[derive(Debug, Clone)]
pub struct StorageRef {
    /// Record name: `<archive>/data/<key>` in zip archives, the storage key in legacy files.
    pub key: String,
    /// Start of this storage inside the record (legacy storage views), in bytes.
    pub byte_offset: usize,
    pub nbytes: usize,
    /// Bytes per element of the storage's own type (1 for untyped storages).
    pub unit: usize,
}

/// A tensor described by the pickle, not yet read.
#[derive(Debug, Clone)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub dtype: DType,
    /// Offset, sizes and strides in elements of `dtype`, as torch records them.
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// `Some` when `v` is a pickled tensor (or a parameter wrapping one), `None` for other values.
pub fn parse(v: &Value) -> Option<Result<TensorRef, String>> {
    let o = v.as_object()?;
    let (module, name) = o.class_name()?;
    let is_rebuild =
        matches!(module, "torch._utils" | "torch._tensor") && name.starts_with("_rebuild");
    if !is_rebuild {
        return None;
    }
    Some(rebuild(o, module, name))
}

fn rebuild(o: &Object, module: &str, name: &str) -> Result<TensorRef, String> {
    let a = &o.args;
    let arg = |i: usize| {
        a.get(i)
            .ok_or_else(|| format!("{module}.{name} has {} arguments, expected more", a.len()))
    };
    match name {
        "_rebuild_tensor" | "_rebuild_tensor_v2" | "_rebuild_tensor_v3" => {
            if let Some(meta) = a.get(if name == "_rebuild_tensor_v3" { 7 } else { 6 }) {
                check_metadata(meta)?;
            }
            let dtype = if name == "_rebuild_tensor_v3" {
                Some(dtype_of(arg(6)?)?)
            } else {
                None
            };
            view(arg(0)?, arg(1)?, arg(2)?, arg(3)?, dtype)
        }
        // A Parameter (or a tensor moved from another device) wraps an ordinary tensor.
        "_rebuild_parameter"
        | "_rebuild_parameter_with_state"
        | "_rebuild_device_tensor_from_cpu_tensor" => match parse(arg(0)?) {
            Some(t) => t,
            None => Err(format!("{name} does not wrap a tensor")),
        },
        // Tensor subclasses: `func(*args)` builds the tensor, the rest only changes its type.
        "_rebuild_from_type" | "_rebuild_from_type_v2" => {
            let inner_args = arg(2)?
                .as_seq()
                .ok_or_else(|| format!("{name} arguments are not a tuple"))?;
            let inner = Value::Object(Box::new(Object::reduce(
                arg(0)?.clone(),
                inner_args.to_vec(),
            )));
            match parse(&inner) {
                Some(t) => t,
                None => Err(format!("{name} does not build a tensor")),
            }
        }
        _ => Err(format!(
            "unsupported tensor kind {module}.{name} (only dense strided tensors are read)"
        )),
    }
}

/// torch marks lazily conjugated / negated views in this dict; their bytes are not the values.
fn check_metadata(meta: &Value) -> Result<(), String> {
    let Some(items) = meta.as_dict_items() else {
        return Ok(());
    };
    match items.iter().find(|(_, v)| v.as_bool() == Some(true)) {
        Some((k, _)) => Err(format!(
            "tensor has the lazy {:?} bit set; save it after .resolve_conj()/.resolve_neg()",
            k.as_str().unwrap_or("?")
        )),
        None => Ok(()),
    }
}

fn usize_of(v: &Value, what: &str) -> Result<usize, String> {
    v.as_i64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| format!("{what} is not a non-negative integer ({})", v.kind()))
}

fn usizes_of(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    v.as_seq()
        .ok_or_else(|| format!("{what} is not a tuple ({})", v.kind()))?
        .iter()
        .map(|x| usize_of(x, what))
        .collect()
}

/// The element type a storage class stands for; `None` for untyped (byte) storages.
fn storage_dtype(class: &Value) -> Result<Option<DType>, String> {
    let Some((module, name)) = class.as_global() else {
        return Err(format!("storage type is a {}, not a class", class.kind()));
    };
    let dtype = match (module, name) {
        ("torch" | "torch.cuda", n) => match n {
            "DoubleStorage" => DType::F64,
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            "UntypedStorage" => return Ok(None),
            _ => return Err(format!("unknown storage type {module}.{name}")),
        },
        ("torch.storage", "UntypedStorage") => return Ok(None),
        _ => return Err(format!("unknown storage type {module}.{name}")),
    };
    Ok(Some(dtype))
}

/// A `torch.<dtype>` global, as `_rebuild_tensor_v3` receives it.
fn dtype_of(v: &Value) -> Result<DType, String> {
    let unknown = || format!("unsupported tensor dtype {}", v.kind());
    let Some(("torch", name)) = v.as_global() else {
        return Err(unknown());
    };
    Ok(match name {
        "float64" | "double" => DType::F64,
        "float32" | "float" => DType::F32,
        "float16" | "half" => DType::F16,
        "bfloat16" => DType::BF16,
        "int64" | "long" => DType::I64,
        "int32" | "int" => DType::I32,
        "int16" | "short" => DType::I16,
        "int8" => DType::I8,
        "uint8" => DType::U8,
        "bool" => DType::Bool,
        _ => return Err(unknown()),
    })
}

/// Decodes torch's storage persistent id:
/// `('storage', storage_type, key, location, numel[, view_metadata])`.
fn view(
    storage: &Value,
    offset: &Value,
    size: &Value,
    stride: &Value,
    dtype: Option<DType>,
) -> Result<TensorRef, String> {
    let Value::PersistentId(pid) = storage else {
        return Err(format!(
            "tensor storage is a {}, not a storage reference",
            storage.kind()
        ));
    };
    let fields = match pid.as_seq() {
        Some(f) if f.len() >= 5 && f[0].as_str() == Some("storage") => f,
        _ => return Err(format!("unrecognised storage reference {pid:?}")),
    };
    let storage_dtype = storage_dtype(&fields[1])?;
    let key = match &fields[2] {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => return Err(format!("storage key is a {}", other.kind())),
    };
    let numel = usize_of(&fields[4], "storage size")?;
    let unit = storage_dtype.map_or(1, DType::size);
    let mut storage = StorageRef {
        key,
        byte_offset: 0,
        nbytes: numel
            .checked_mul(unit)
            .ok_or("storage size overflows".to_string())?,
        unit,
    };
    // Old torch.save files could pickle a slice of a storage: (view_key, offset, size).
    if let Some(meta) = fields.get(5).filter(|m| **m != Value::None) {
        let m = meta
            .as_seq()
            .filter(|m| m.len() == 3)
            .ok_or_else(|| format!("unrecognised storage view {meta:?}"))?;
        let start = usize_of(&m[1], "storage view offset")?;
        let len = usize_of(&m[2], "storage view size")?;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= numel)
            .ok_or_else(|| {
                format!("storage view {start}+{len} lies outside its storage of {numel} elements")
            })?;
        storage.byte_offset = start * unit;
        storage.nbytes = (end - start) * unit;
    }
    let dtype = match (dtype, storage_dtype) {
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => DType::U8,
    };
    let shape = usizes_of(size, "tensor size")?;
    let strides = usizes_of(stride, "tensor stride")?;
    if shape.len() != strides.len() {
        return Err(format!(
            "tensor size {shape:?} and stride {strides:?} differ in rank"
        ));
    }
    Ok(TensorRef {
        storage,
        dtype,
        offset: usize_of(offset, "storage offset")?,
        shape,
        strides,
    })
}

impl TensorRef {
    pub fn numel(&self) -> Option<usize> {
        if self.shape.contains(&0) {
            return Some(0);
        }
        self.shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s))
    }

    /// Whether the elements are the storage bytes from `offset` on, in order.
    pub fn is_contiguous(&self) -> bool {
        let mut expect = 1usize;
        for (&size, &stride) in self.shape.iter().zip(&self.strides).rev() {
            if size != 1 && stride != expect {
                return false;
            }
            expect = expect.saturating_mul(size);
        }
        true
    }

    /// Checks that every element of the view lies inside the storage.
    pub fn check_bounds(&self) -> Result<(), String> {
        let es = self.dtype.size();
        let storage_elems = self.storage.nbytes / es;
        match self.numel() {
            Some(0) => return Ok(()),
            None => return Err(format!("tensor size {:?} overflows", self.shape)),
            Some(_) => {}
        }
        let last = self
            .shape
            .iter()
            .zip(&self.strides)
            .try_fold(self.offset, |acc, (&n, &s)| {
                acc.checked_add((n - 1).checked_mul(s)?)
            });
        match last {
            Some(last) if last < storage_elems => Ok(()),
            _ => Err(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches past its storage of {} elements",
                self.offset, self.shape, self.strides, storage_elems
            )),
        }
    }

    /// Copies the view out of `storage` (the storage's own bytes) into row-major order.
    pub fn materialise(&self, storage: &[u8]) -> Result<Vec<u8>, String> {
        self.check_bounds()?;
        let es = self.dtype.size();
        let numel = self.numel().ok_or("tensor size overflows".to_string())?;
        if numel == 0 {
            return Ok(Vec::new());
        }
        if self.is_contiguous() {
            return Ok(storage[self.offset * es..(self.offset + numel) * es].to_vec());
        }
        let mut out = Vec::with_capacity(numel * es);
        let nd = self.shape.len();
        let (inner, inner_stride) = (self.shape[nd - 1], self.strides[nd - 1]);
        let mut idx = vec![0usize; nd - 1];
        loop {
            let base = self.offset
                + idx
                    .iter()
                    .zip(&self.strides)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            if inner_stride == 1 {
                out.extend_from_slice(&storage[base * es..(base + inner) * es]);
            } else {
                for j in 0..inner {
                    let at = (base + j * inner_stride) * es;
                    out.extend_from_slice(&storage[at..at + es]);
                }
            }
            // Odometer over the outer dimensions, last one fastest.
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return Ok(out);
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}

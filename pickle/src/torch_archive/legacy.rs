//! The pre-1.6 `torch.save` stream: five pickles back to back (magic number, protocol version,
//! system info, the payload, the sorted storage keys), then each storage as a little-endian
//! i64 element count followed by its little-endian elements.
use super::{assemble, walk, RawTensor};
use crate::{self as pickle, Value};
use std::borrow::Cow;
use std::collections::HashMap;

/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c) as `LONG1` stores it.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

pub fn read(data: &[u8]) -> Result<Vec<(String, RawTensor)>, String> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Value, String> {
        let (v, used) = pickle::read_prefix(&data[pos..])
            .map_err(|e| format!("legacy torch.save stream, {what}: {e}"))?;
        pos += used;
        Ok(v)
    };
    let magic = next("magic number")?;
    if magic != Value::BigInt(MAGIC.to_vec()) {
        return Err(
            "a pickle, but not a torch.save checkpoint (no torch magic number at the start)".into(),
        );
    }
    match next("protocol version")? {
        Value::Int(PROTOCOL_VERSION) => {}
        v => {
            return Err(format!(
                "unsupported legacy torch.save protocol version {v:?}"
            ))
        }
    }
    next("system info")?;
    let root = next("payload")?;
    let keys = next("storage key list")?;
    let keys: Vec<String> = keys
        .as_seq()
        .and_then(|k| k.iter().map(|k| k.as_str().map(str::to_string)).collect())
        .ok_or("legacy torch.save stream: storage key list is not a list of strings")?;

    let mut found = Vec::new();
    walk::saved(&root, "", &mut found)?;
    // Element sizes are not in the stream; they come from the tensors' storage types.
    let elem: HashMap<&str, usize> = found
        .iter()
        .map(|(_, t)| (t.storage.key.as_str(), t.storage.unit))
        .collect();
    let mut records: HashMap<String, &[u8]> = HashMap::new();
    for key in &keys {
        let truncated = || format!("legacy torch.save stream: storage {key} is truncated");
        let count = data.get(pos..pos + 8).ok_or_else(truncated)?;
        let count = i64::from_le_bytes(count.try_into().expect("8 bytes"));
        let size = *elem.get(key.as_str()).ok_or_else(|| {
            format!("legacy torch.save stream: storage {key} is used by no tensor, so its element size is unknown")
        })?;
        let nbytes = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(size))
            .ok_or_else(|| format!("legacy torch.save stream: storage {key} has size {count}"))?;
        let start = pos + 8;
        let body = data
            .get(start..start.saturating_add(nbytes))
            .ok_or_else(|| {
                format!(
                    "{}: needs {nbytes} bytes, has {}",
                    truncated(),
                    data.len().saturating_sub(start)
                )
            })?;
        records.insert(key.clone(), body);
        pos = start + nbytes;
    }
    assemble(found, false, |key| {
        records
            .get(key)
            .map(|b| Cow::Borrowed(*b))
            .ok_or_else(|| format!("legacy torch.save stream: storage {key} is missing"))
    })
}

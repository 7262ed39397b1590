//! Finding the tensors in an unpickled checkpoint and naming them.
//!
//! `torch.save` payloads are walked as nested containers: dict keys (and list indices) joined
//! with '.' name each tensor, keys kept as stored (`module.` prefixes included). TorchScript
//! archives hold the module object itself; their tensors are named like `state_dict()` does:
//! per module its parameters, then its buffers, then each submodule's entries under its attribute
//! name. Which attributes are parameters and buffers is read from the class definitions the
//! archive carries in `code/` (`__parameters__ = [...]`, `__buffers__ = [...]`).
use super::tensor::{self, TensorRef};
use crate::{Object, Value};
use std::collections::HashMap;

/// What the archive's code says about one TorchScript class.
#[derive(Debug, Default)]
pub struct ClassInfo {
    pub is_module: bool,
    pub parameters: Vec<String>,
    /// `None` when the class lists no `__buffers__` (older archives): every tensor attribute
    /// that is not a parameter is then taken as a buffer.
    pub buffers: Option<Vec<String>>,
}

/// Classes by qualified name (`__torch__.torch.nn.modules.conv.Conv2d`).
pub type Classes = HashMap<String, ClassInfo>;

pub type Found = Vec<(String, TensorRef)>;

/// Records the class definitions of one `code/<module path>.py` file.
pub fn parse_code(module: &str, source: &str, classes: &mut Classes) {
    let mut current: Option<String> = None;
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("class ") {
            let name_end = rest.find(['(', ':']).unwrap_or(rest.len());
            let name = rest[..name_end].trim();
            let base = rest[name_end..]
                .strip_prefix('(')
                .and_then(|b| b.split(')').next())
                .unwrap_or("")
                .trim();
            let qual = format!("{module}.{name}");
            classes.insert(
                qual.clone(),
                ClassInfo {
                    is_module: base == "Module",
                    ..ClassInfo::default()
                },
            );
            current = Some(qual);
        } else if !line.starts_with(' ') && !line.trim().is_empty() {
            current = None;
        } else if let Some(info) = current.as_ref().and_then(|c| classes.get_mut(c)) {
            let t = line.trim_start();
            if let Some(list) = t.strip_prefix("__parameters__ = ") {
                info.parameters = quoted_names(list);
            } else if let Some(list) = t.strip_prefix("__buffers__ = ") {
                info.buffers = Some(quoted_names(list));
            }
        }
    }
}

/// The quoted strings of a printed list such as `["weight", "bias", ]`.
fn quoted_names(list: &str) -> Vec<String> {
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn push_tensor(v: &Value, key: String, out: &mut Found) -> Result<bool, String> {
    match tensor::parse(v) {
        Some(Ok(t)) => {
            out.push((key, t));
            Ok(true)
        }
        Some(Err(e)) => Err(format!("tensor '{key}': {e}")),
        None => Ok(false),
    }
}

/// Whether the root of a pickle is a TorchScript module object.
pub fn is_script_object(v: &Value) -> bool {
    matches!(v.as_object().and_then(Object::class_name),
        Some((m, _)) if m == "__torch__" || m.starts_with("__torch__."))
}

/// Tensors of a `torch.save` payload.
pub fn saved(v: &Value, prefix: &str, out: &mut Found) -> Result<(), String> {
    if push_tensor(v, prefix.to_string(), out)? {
        return Ok(());
    }
    if let Some(items) = v.as_dict_items() {
        for (k, val) in items {
            let name = match k {
                Value::String(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                _ => {
                    let at = if prefix.is_empty() {
                        "the top level"
                    } else {
                        prefix
                    };
                    return Err(format!("a dict at {at} has a {} key", k.kind()));
                }
            };
            saved(val, &join(prefix, &name), out)?;
        }
    } else if let Some(items) = v.as_seq() {
        for (i, val) in items.iter().enumerate() {
            saved(val, &join(prefix, &i.to_string()), out)?;
        }
    } else if let Some(state) = v.as_object().and_then(|o| o.state.as_ref()) {
        if state.get("_parameters").is_some() && state.get("_modules").is_some() {
            pickled_module(state, prefix, out)?;
        }
    }
    Ok(())
}

/// A whole `nn.Module` passed to `torch.save`: its `__dict__` holds the registries.
fn pickled_module(state: &Value, prefix: &str, out: &mut Found) -> Result<(), String> {
    let entries = |name: &str| {
        state
            .get(name)
            .and_then(Value::as_dict_items)
            .unwrap_or(&[])
    };
    let skipped: Vec<&str> = match state.get("_non_persistent_buffers_set") {
        Some(Value::Set(s)) => s.iter().filter_map(Value::as_str).collect(),
        Some(Value::Object(o)) => o
            .args
            .first()
            .and_then(Value::as_seq)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for (registry, is_buffers) in [("_parameters", false), ("_buffers", true)] {
        for (k, v) in entries(registry) {
            let Some(name) = k.as_str() else { continue };
            if is_buffers && skipped.contains(&name) {
                continue;
            }
            push_tensor(v, join(prefix, name), out)?;
        }
    }
    for (k, v) in entries("_modules") {
        if let (Some(name), Some(sub)) = (k.as_str(), v.as_object().and_then(|o| o.state.as_ref()))
        {
            pickled_module(sub, &join(prefix, name), out)?;
        }
    }
    Ok(())
}

fn qualname(o: &Object) -> Option<String> {
    o.class_name().map(|(m, n)| format!("{m}.{n}"))
}

/// Tensors of a TorchScript module object, in `state_dict()` order.
pub fn script(v: &Value, prefix: &str, classes: &Classes, out: &mut Found) -> Result<(), String> {
    let Some(o) = v.as_object() else {
        return Ok(());
    };
    let Some(state) = o.state.as_ref().and_then(Value::as_dict_items) else {
        return Ok(());
    };
    let info = qualname(o).and_then(|q| classes.get(&q));
    if matches!(info, Some(i) if !i.is_module) {
        return Ok(());
    }
    let attr = |name: &str| {
        state
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
    };
    match info {
        Some(info) => {
            for p in &info.parameters {
                if let Some(v) = attr(p) {
                    push_tensor(v, join(prefix, p), out)?;
                }
            }
            match &info.buffers {
                Some(buffers) => {
                    for b in buffers {
                        if let Some(v) = attr(b) {
                            push_tensor(v, join(prefix, b), out)?;
                        }
                    }
                }
                None => {
                    for (k, v) in state {
                        let Some(name) = k.as_str() else { continue };
                        if !info.parameters.iter().any(|p| p == name) {
                            push_tensor(v, join(prefix, name), out)?;
                        }
                    }
                }
            }
        }
        // No class definition: every tensor attribute counts, in attribute order.
        None => {
            for (k, v) in state {
                if let Some(name) = k.as_str() {
                    push_tensor(v, join(prefix, name), out)?;
                }
            }
        }
    }
    for (k, v) in state {
        if let Some(name) = k.as_str() {
            if is_script_object(v) {
                script(v, &join(prefix, name), classes, out)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_definitions_from_archive_code() {
        let src = "class Block(Module):\n  __parameters__ = [\"gain\", ]\n  __buffers__ = [\"counter\", \"b\", ]\n  gain : Tensor\n  def forward(self: __torch__.m.Block) -> Tensor:\n    return self.gain\nclass Old(Module):\n  __parameters__ = []\n  x : Tensor\ndef helper(x: Tensor) -> Tensor:\n  __buffers__ = [\"not_a_class_field\", ]\nclass Plain(object):\n  y : int\n";
        let mut classes = Classes::new();
        parse_code("__torch__.m", src, &mut classes);
        let block = &classes["__torch__.m.Block"];
        assert!(block.is_module);
        assert_eq!(block.parameters, ["gain"]);
        assert_eq!(
            block.buffers.as_deref(),
            Some(&["counter".to_string(), "b".to_string()][..])
        );
        let old = &classes["__torch__.m.Old"];
        assert!(old.is_module && old.parameters.is_empty() && old.buffers.is_none());
        assert!(!classes["__torch__.m.Plain"].is_module);
        assert_eq!(classes.len(), 3);
    }
}

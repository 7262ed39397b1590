//! `overrides:` entries: a dotted `RunSpec` field path and a value. A list value is an
//! axis (one cell per element); to set a field that is itself a list, write a list of
//! lists (`eval_subsets: [[base, new]]`).
//!
//! A path whose parent is unset on a cell (`subpt.rank` on a CoOp cell, `nfl.lambda` on a
//! method without NFL) does not apply to that cell, so an ablation over SubPT settings
//! leaves the CoOp cells alone and they collapse into one cell each.
use crate::grid::yaml_lines::nested_line;
use crate::grid::GridError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::spec::{Method, RunSpec};

#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Dotted field path, e.g. `subpt.rank`.
    pub key: String,
    /// One value, or the values of an axis.
    pub values: Vec<Value>,
    /// Whether the file gave a list (an axis, even of one value).
    pub axis: bool,
    /// Where the key is written (1-based).
    pub line: Option<usize>,
}

/// Reads and checks the `overrides` mapping against a spec that has every optional part
/// set, so a misspelt path or a wrongly typed value fails before any expansion.
pub(crate) fn parse(
    map: &serde_yaml_ng::Mapping,
    text: &str,
    path: &Path,
) -> Result<Vec<Override>, GridError> {
    let probe_of = |m: Method| {
        preset(
            Protocol::FewShot,
            subpt_trainer::data::DatasetName::ImageNet,
            PathBuf::from("/data"),
            m,
            4,
            1,
            PathBuf::from("/weights"),
        )
    };
    let mut probe = probe_of(Method::CoopSubNfl);
    probe.kg = probe_of(Method::Kgcoop).kg;
    probe.prograd = probe_of(Method::Prograd).prograd;
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            return Err(GridError::Invalid {
                path: path.to_path_buf(),
                key: format!("overrides.{k:?}"),
                line: None,
                message: "override keys are RunSpec field paths (strings)".into(),
            });
        };
        let line = nested_line(text, "overrides", key);
        let invalid = |message: String| GridError::Invalid {
            path: path.to_path_buf(),
            key: format!("overrides.{key}"),
            line,
            message,
        };
        // The grid's own axes: an override would silently replace the whole axis by one value.
        let axis_key = [
            ("dataset", "datasets"),
            ("method", "methods"),
            ("shots", "shots"),
            ("seed", "seeds"),
            ("weights", "weights"),
            ("root", "data_root"),
            ("cache_dir", "cache_dir"),
        ];
        if let Some((_, top)) = axis_key.iter().find(|(field, _)| *field == key) {
            return Err(invalid(format!(
                "`{key}` is set by the grid's `{top}:` key (an override would collapse it to \
                 one value); list the values there"
            )));
        }
        // JSON has no NaN or infinity: serde would quietly turn `.nan` into null.
        if let Some(bad) = non_finite(v) {
            return Err(invalid(format!(
                "{bad} is not a finite number, which no run-spec field takes"
            )));
        }
        let json = serde_json::to_value(v).map_err(|e| invalid(e.to_string()))?;
        let (values, axis) = match json {
            Value::Array(a) if a.is_empty() => {
                return Err(invalid("an axis needs at least one value".into()))
            }
            Value::Array(a) => (a, true),
            other => (vec![other], false),
        };
        for v in &values {
            apply(&probe, &[(key, v)]).map_err(&invalid)?;
        }
        out.push(Override {
            key: key.to_string(),
            values,
            axis,
            line,
        });
    }
    Ok(out)
}

/// The first NaN or infinite number in a YAML value, as YAML writes it.
fn non_finite(v: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Number(n) => n.as_f64().filter(|x| !x.is_finite()).map(|x| {
            if x.is_nan() {
                ".nan".to_string()
            } else if x > 0.0 {
                ".inf".to_string()
            } else {
                "-.inf".to_string()
            }
        }),
        Y::Sequence(items) => items.iter().find_map(non_finite),
        Y::Mapping(m) => m.values().find_map(non_finite),
        Y::Tagged(t) => non_finite(&t.value),
        _ => None,
    }
}

/// `spec` with each `(path, value)` set, skipping paths whose parent is unset (a grid's
/// override is inactive on such cells). The one override syntax: grids' `overrides:` and
/// `subpt-bench train --set` ([`apply_every`]) both come here.
pub fn apply(spec: &RunSpec, assignment: &[(&str, &Value)]) -> Result<RunSpec, String> {
    apply_with(spec, assignment, false)
}

/// [`apply`] for one run, where a path whose parent is unset was set for nothing: an error.
pub fn apply_every(spec: &RunSpec, assignment: &[(&str, &Value)]) -> Result<RunSpec, String> {
    apply_with(spec, assignment, true)
}

fn apply_with(
    spec: &RunSpec,
    assignment: &[(&str, &Value)],
    every: bool,
) -> Result<RunSpec, String> {
    let mut json = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    for (key, value) in assignment {
        if let Applied::No { unset } = set(&mut json, key, value)? {
            if every {
                return Err(format!(
                    "`{key}` does not apply: `{unset}` is not set for method {}",
                    spec.method
                ));
            }
        }
    }
    serde_json::from_value(json).map_err(|e| format!("does not fit the run spec: {e}"))
}

/// Whether a path was set.
enum Applied {
    Yes,
    /// The path runs through `unset`, which is null on this spec.
    No {
        unset: String,
    },
}

fn set(root: &mut Value, key: &str, value: &Value) -> Result<Applied, String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..i].join(".");
        let obj = match node {
            Value::Object(o) => o,
            // Inactive for this cell (e.g. SubPT settings on a CoOp cell).
            Value::Null => return Ok(Applied::No { unset: here }),
            _ => return Err(format!("`{here}` is a value, not a group of fields")),
        };
        if !obj.contains_key(*part) {
            let known: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
            let within = if here.is_empty() {
                "the run spec".to_string()
            } else {
                format!("`{here}`")
            };
            return Err(format!(
                "unknown field `{part}` in {within} (known: {})",
                known.join(", ")
            ));
        }
        if i + 1 == parts.len() {
            obj.insert(part.to_string(), value.clone());
            return Ok(Applied::Yes);
        }
        node = obj.get_mut(*part).expect("checked above");
    }
    Ok(Applied::Yes)
}

//! The grid file schema. Relative paths are relative to the grid file's directory and a
//! leading `~` is the home directory, so a grid means the same from any working directory.
use crate::grid::overrides::{self, Override};
use crate::grid::yaml_lines::top_level_line;
use crate::grid::GridError;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use subpt_trainer::data::DatasetName;
use subpt_trainer::engine::spec::Method;

/// The protocols and their presets live in the trainer (`engine::presets`).
pub use subpt_trainer::engine::presets::Protocol;

/// A validated grid file with resolved paths.
#[derive(Debug, Clone)]
pub struct GridConfig {
    pub name: String,
    /// The grid file itself.
    pub source: PathBuf,
    pub datasets: Vec<DatasetName>,
    pub protocols: Vec<Protocol>,
    /// Few-shot shot counts (base-to-novel and DG fix 4 shots).
    pub shots: Vec<usize>,
    pub seeds: Vec<u64>,
    pub methods: Vec<Method>,
    /// Backbone weights; more than one makes an axis.
    pub weights: Vec<PathBuf>,
    pub data_root: PathBuf,
    pub output_dir: PathBuf,
    pub cache_dir: Option<PathBuf>,
    /// Domain generalisation: the dataset trained on, and the datasets its model is tested on.
    pub dg_source: DatasetName,
    pub dg_targets: Vec<DatasetName>,
    /// In file order.
    pub overrides: Vec<Override>,
}

/// A training dataset name, checked while parsing so the error carries its position.
struct TrainDataset(DatasetName);

impl<'de> Deserialize<'de> for TrainDataset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let s = String::deserialize(d)?;
        let name: DatasetName = s.parse().map_err(D::Error::custom)?;
        if name.info().test_only {
            return Err(D::Error::custom(format!(
                "`{s}` has only a test split; the domain_generalization protocol evaluates it"
            )));
        }
        Ok(TrainDataset(name))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    name: String,
    #[serde(default)]
    datasets: Vec<TrainDataset>,
    protocols: Vec<Protocol>,
    #[serde(default)]
    shots: Vec<usize>,
    seeds: Vec<u64>,
    methods: Vec<Method>,
    weights: OneOrMany,
    data_root: String,
    output_dir: String,
    #[serde(default)]
    cache_dir: Option<String>,
    #[serde(default)]
    dg_source: Option<TrainDataset>,
    #[serde(default)]
    dg_targets: Option<Vec<DatasetName>>,
    #[serde(default)]
    overrides: serde_yaml_ng::Mapping,
}

impl GridConfig {
    pub fn load(path: &Path) -> Result<GridConfig, GridError> {
        let text = subpt_trainer::io::read_to_string(path)?;
        Self::parse(&text, path)
    }

    /// Parses grid text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<GridConfig, GridError> {
        let raw: RawGrid = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let (line, column) = refine_position(text, &e.to_string(), line, column);
            GridError::Yaml {
                path: path.to_path_buf(),
                line,
                column,
                message: strip_position(&e.to_string()),
            }
        })?;
        let invalid = |key: &str, message: String| GridError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            line: top_level_line(text, key),
            message,
        };
        let needs = |key: &str, empty: bool, why: &str| {
            if empty {
                Err(invalid(
                    key,
                    format!("must list at least one value ({why})"),
                ))
            } else {
                Ok(())
            }
        };
        needs("protocols", raw.protocols.is_empty(), "nothing to run")?;
        needs("seeds", raw.seeds.is_empty(), "every cell has a seed")?;
        needs("methods", raw.methods.is_empty(), "every cell has a method")?;
        let few_shot = raw.protocols.contains(&Protocol::FewShot);
        let per_dataset = few_shot || raw.protocols.iter().any(|p| p.is_base_to_novel());
        needs(
            "datasets",
            per_dataset && raw.datasets.is_empty(),
            "few_shot and base_to_novel train on them",
        )?;
        needs(
            "shots",
            few_shot && raw.shots.is_empty(),
            "few_shot runs each shot count",
        )?;
        if raw.shots.contains(&0) {
            return Err(invalid("shots", "shot counts start at 1".into()));
        }
        // Base-to-novel and DG train with the protocol's own shot count: other counts listed
        // without a few_shot protocol would be silently ignored.
        let fixed: Vec<String> = raw
            .protocols
            .iter()
            .filter_map(|&p| {
                let k = subpt_trainer::engine::presets::protocol_shots(p)?;
                Some((k, format!("{p} trains on {k} shots")))
            })
            .filter(|(k, _)| !few_shot && raw.shots.iter().any(|s| s != k))
            .map(|(_, why)| why)
            .collect();
        if !fixed.is_empty() {
            return Err(invalid(
                "shots",
                format!(
                    "{:?} would be ignored: {} (their papers' protocol); `shots` sets the \
                     few_shot protocol's counts",
                    raw.shots,
                    fixed.join(", ")
                ),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let weights = match raw.weights {
            OneOrMany::One(w) => vec![w],
            OneOrMany::Many(w) => w,
        };
        needs("weights", weights.is_empty(), "every cell needs a backbone")?;
        // A cell's id keeps the weights' file name only (see `RunSpec::hash`).
        let mut names = std::collections::HashSet::new();
        if let Some(dup) = weights
            .iter()
            .find(|w| !names.insert(Path::new(w.as_str()).file_name()))
        {
            return Err(invalid(
                "weights",
                format!(
                    "two weights files named {:?}: cells are told apart by the file name, so \
                     give each file of the axis its own name",
                    Path::new(dup.as_str()).file_name().unwrap_or_default()
                ),
            ));
        }
        let overrides = overrides::parse(&raw.overrides, text, path)?;
        let dg_source = raw.dg_source.map_or(DatasetName::ImageNet, |d| d.0);
        let dg_targets: Vec<DatasetName> = match raw.dg_targets {
            Some(t) => t,
            None if dg_source == DatasetName::ImageNet => {
                subpt_trainer::engine::presets::DG_TARGETS.to_vec()
            }
            None => Vec::new(),
        };
        if raw.protocols.contains(&Protocol::DomainGeneralization) && dg_targets.is_empty() {
            return Err(GridError::Invalid {
                path: path.to_path_buf(),
                key: "dg_targets".into(),
                // Absent or empty: point at the list if written, else at the source it lacks.
                line: top_level_line(text, "dg_targets").or(top_level_line(text, "dg_source")),
                message: format!(
                    "domain_generalization needs the datasets to test the {dg_source} model on"
                ),
            });
        }
        Ok(GridConfig {
            name: raw.name,
            source: path.to_path_buf(),
            datasets: raw.datasets.into_iter().map(|d| d.0).collect(),
            protocols: raw.protocols,
            shots: raw.shots,
            seeds: raw.seeds,
            methods: raw.methods,
            weights: weights.iter().map(|w| resolve(base, w)).collect(),
            data_root: resolve(base, &raw.data_root),
            output_dir: resolve(base, &raw.output_dir),
            cache_dir: raw.cache_dir.map(|c| resolve(base, &c)),
            dg_source,
            dg_targets,
            overrides,
        })
    }
}

/// `~` → home; relative → under `base`.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    if p == "~" {
        if let Some(h) = home() {
            return h;
        }
    }
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(h) = home() {
            return h.join(rest);
        }
    }
    absolute(&base.join(p))
}

/// `p` made absolute against the working directory, with `.` and `..` folded, so a cell's
/// paths (and so its id) are the same however the grid file was named on the command line.
fn absolute(p: &Path) -> PathBuf {
    use std::path::Component;
    let full = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in full.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// serde_yaml_ng reports a bad list element at the start of its list; when the message
/// quotes the offending value and a later line of that list holds it, point there instead.
fn refine_position(text: &str, msg: &str, line: usize, column: usize) -> (usize, usize) {
    if msg.contains("duplicate field") || msg.contains("duplicate entry") {
        return duplicate_key_position(text, msg, line).unwrap_or((line, column));
    }
    let quoted = msg.split(['"', '`']).nth(1).filter(|q| !q.is_empty());
    let Some(q) = quoted else {
        return (line, column);
    };
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate().skip(line.saturating_sub(1)) {
        if i + 1 > line && !l.starts_with([' ', '\t', '-']) {
            break; // the next top-level key: the value was not in this list after all
        }
        let hit = l.match_indices(q).find(|&(at, _)| {
            let before = l[..at].chars().next_back();
            let after = l[at + q.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !word(before) && !word(after)
        });
        if let Some((at, _)) = hit {
            return (i + 1, at + 1);
        }
    }
    (line, column)
}

/// serde_yaml_ng places a duplicate key at the start of its mapping: point at the second
/// occurrence of the key, at the indentation of its first, instead.
fn duplicate_key_position(text: &str, msg: &str, line: usize) -> Option<(usize, usize)> {
    let key = msg.split(['"', '`']).nth(1).filter(|q| !q.is_empty())?;
    let mut indent = None;
    for (i, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let body = l.trim_start();
        let at = l.len() - body.len();
        let is_key = body
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'));
        match indent {
            Some(first) if is_key && at == first => return Some((i + 1, at + 1)),
            None if is_key => indent = Some(at),
            _ => {}
        }
    }
    None
}

/// serde_yaml_ng appends " at line L column C"; the error prints the position up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

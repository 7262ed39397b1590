//! Finding and validating `result.json` files below a results directory.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use subpt_trainer::engine::result::RunResult;

/// One accepted run and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub result: RunResult,
    /// The settings that tell this run apart from others in its table cell (`field=value`,
    /// space-separated; empty when nothing does). Set by `label::distinguish`.
    pub variant: String,
}

#[derive(Debug, Default)]
pub struct Collected {
    /// Accepted runs, ordered by path so every table comes out the same way each time.
    pub runs: Vec<Loaded>,
    /// One line per skipped file, naming it and why.
    pub warnings: Vec<String>,
    /// One line per valid result left out because its cell is not in the grid reported on.
    pub left_out: Vec<String>,
}

/// Which results a report covers.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Every result below the directory.
    All,
    /// The cells of one grid (by id, the name of each cell's directory), and those of them
    /// that failed or were skipped in its last run: an older result in such a cell's
    /// directory is not the grid's answer, so it is not shown.
    Grid {
        name: String,
        ids: BTreeSet<String>,
        failed: BTreeSet<String>,
    },
}

impl Scope {
    /// The cells of the grid last run into `dir` (its `grid-summary.json`), or everything
    /// when no grid has run there.
    pub fn last_grid(dir: &Path) -> Scope {
        let summary = std::fs::read(dir.join(GRID_SUMMARY))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let Some(v) = summary else {
            return Scope::All;
        };
        let ids = v["cell_ids"].as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        });
        let failed = ["failed", "skipped"]
            .iter()
            .filter_map(|k| v[k].as_object())
            .flat_map(|m| m.keys().cloned())
            .collect();
        match ids {
            Some(ids) => Scope::Grid {
                name: v["grid"].as_str().unwrap_or_default().to_string(),
                ids,
                failed,
            },
            None => Scope::All,
        }
    }
}

/// The record a grid run leaves in its output directory.
pub const GRID_SUMMARY: &str = "grid-summary.json";

/// Reads every `result.json` below `dir`. A file counts only when it parses as a
/// `RunResult` and its recorded spec hash is the hash of its spec: a hand-edited or
/// stale spec would otherwise be reported under settings it was not run with. Results of
/// cells outside `scope` are left out, each named in `left_out`.
pub fn collect(dir: &Path, scope: &Scope) -> Result<Collected, super::ReportError> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut out = Collected::default();
    for path in files {
        match load(&path) {
            Ok(result) => {
                let id = path
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Scope::Grid { name, ids, failed } = scope {
                    if failed.contains(&id) {
                        out.warnings.push(format!(
                            "{} [{id}]: did not finish in the last run of grid `{name}`; its \
                             stored result is older and not shown (rerun the grid)",
                            result.spec.describe()
                        ));
                        continue;
                    }
                    if !ids.contains(&id) {
                        out.left_out.push(format!(
                            "{} [{id}]: not a cell of grid `{name}` (other settings, or an \
                             earlier version of the grid)",
                            result.spec.describe()
                        ));
                        continue;
                    }
                }
                out.runs.push(Loaded {
                    path,
                    result,
                    variant: String::new(),
                })
            }
            Err(why) => out
                .warnings
                .push(format!("skipping {}: {why}", path.display())),
        }
    }
    Ok(out)
}

fn load(path: &Path) -> Result<RunResult, String> {
    RunResult::read_valid(path)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), super::ReportError> {
    let io = |e| super::ReportError::Io(subpt_trainer::io::IoError::new(dir, e));
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if path
            .file_name()
            .is_some_and(|n| n == subpt_trainer::store::RESULT)
        {
            files.push(path);
        }
    }
    Ok(())
}

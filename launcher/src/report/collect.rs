//! Finding and validating `result.json` files below a results directory.
use std::path::{Path, PathBuf};
use subpt_trainer::engine::run::RunResult;

/// One accepted run and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub result: RunResult,
}

#[derive(Debug, Default)]
pub struct Collected {
    /// Accepted runs, ordered by path so every table comes out the same way each time.
    pub runs: Vec<Loaded>,
    /// One line per skipped file, naming it and why.
    pub warnings: Vec<String>,
}

/// Reads every `result.json` below `dir`. A file counts only when it parses as a
/// `RunResult` and its recorded spec hash is the hash of its spec: a hand-edited or
/// stale spec would otherwise be reported under settings it was not run with.
pub fn collect(dir: &Path) -> Result<Collected, super::ReportError> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut out = Collected::default();
    for path in files {
        match load(&path) {
            Ok(result) => out.runs.push(Loaded { path, result }),
            Err(why) => out
                .warnings
                .push(format!("skipping {}: {why}", path.display())),
        }
    }
    Ok(out)
}

fn load(path: &Path) -> Result<RunResult, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let result: RunResult =
        serde_json::from_str(&text).map_err(|e| format!("not a run result: {e}"))?;
    let hash = result.spec.hash();
    if result.spec_hash != hash {
        return Err(format!(
            "spec_hash {} does not match the spec (hash {hash})",
            result.spec_hash
        ));
    }
    Ok(result)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), super::ReportError> {
    let io = |e: std::io::Error| super::ReportError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if path.file_name().is_some_and(|n| n == "result.json") {
            files.push(path);
        }
    }
    Ok(())
}

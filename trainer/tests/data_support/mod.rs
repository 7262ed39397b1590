//! Shared helpers of the data-layer integration tests: locating and running the Python oracles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("trainer/ has a parent")
        .to_path_buf()
}

/// `$SUBPT_PYTHON`, else `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SUBPT_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python for the oracles: set SUBPT_PYTHON or run `make test` to create {}",
        venv.display()
    );
    venv
}

/// Runs `tests/oracle/<script>` on a JSON input file and parses its JSON stdout.
pub fn run_oracle(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, serde_json::to_vec(input).unwrap()).unwrap();
    let script_path = workspace_root().join("tests/oracle").join(script);
    let out = Command::new(python())
        .arg(&script_path)
        .arg(&input_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script_path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("oracle output is JSON")
}

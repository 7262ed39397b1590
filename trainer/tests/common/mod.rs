//! Running the Python oracles from Rust tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the workspace holding `tests/oracle`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The venv interpreter: `SUBPT_PYTHON`, else `<repo>/.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SUBPT_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python oracle environment at {}: run `make test` (it creates the venv)",
        p.display()
    );
    p
}

/// Runs `tests/oracle/<script>` with `args`, failing the test with its stderr on error.
pub fn run_oracle(script: &str, args: &[&str]) {
    let out = Command::new(python())
        .arg(repo_root().join("tests/oracle").join(script))
        .args(args)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "oracle {script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a safetensors file into a name -> tensor map.
pub fn load(path: &Path) -> std::collections::HashMap<String, tch::Tensor> {
    tch::Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

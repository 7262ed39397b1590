//! The Python peers' harness for the crates without libtorch, included by their tests with
//! `#[path = "../../tests/harness.rs"] mod harness;`: locating the workspace's venv and running
//! the oracle scripts in `tests/oracle/`.
#![allow(dead_code)]
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the folder holding `tests/oracle`): the including crate's parent.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace members sit one level down")
        .to_path_buf()
}

/// `$SUBPT_PYTHON`, else the workspace venv's python.
pub fn python() -> PathBuf {
    let p = std::env::var_os("SUBPT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "no Python for the oracle scripts at {} (set SUBPT_PYTHON, or run `make test` to create .venv)",
        p.display()
    );
    p
}

/// Runs `tests/oracle/<script> <args>` and returns its stdout; panics with its output on failure.
pub fn run<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Vec<u8> {
    let path = workspace_root().join("tests/oracle").join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs an oracle on a JSON input file and parses its JSON stdout.
pub fn run_json(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, serde_json::to_vec(input).unwrap()).unwrap();
    let stdout = run(script, &[&input_path]);
    serde_json::from_slice(&stdout).expect("oracle output is JSON")
}

/// Checks that go on after a failure, so one run of an oracle lists every mismatch.
pub struct Checks {
    pub failures: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(msg());
        }
    }
}

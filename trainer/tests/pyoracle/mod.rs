//! Runs the Python peers in `tests/oracle/` for the integration tests.
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("trainer/ sits in the workspace")
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

/// Runs `tests/oracle/<script> <args>`; panics with its stderr when it fails.
pub fn run(script: &str, args: &[&std::ffi::OsStr]) {
    let path = workspace_root().join("tests/oracle").join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}{}",
        script,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Shared helpers of the integration tests: locating and running the Python oracles in
//! `tests/oracle/` (the peers our numbers are checked against) and reading what they write.
#![allow(dead_code)]
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the folder holding `tests/oracle`).
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

/// Reads a safetensors file into a name -> tensor map.
pub fn load(path: &Path) -> std::collections::HashMap<String, tch::Tensor> {
    tch::Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// A tiny random-init CLIP (OpenAI layout) written to `path` and loaded in fp32 on the CPU.
pub fn tiny_clip(seed: i64, path: &Path) -> subpt_trainer::clip::Clip {
    use subpt_trainer::clip::random_init::{generate, Spec};
    let weights = generate(&Spec::tiny_vit(), seed);
    let named: Vec<(&str, &tch::Tensor)> = weights.iter().map(|(k, v)| (k.as_str(), v)).collect();
    tch::Tensor::write_safetensors(&named, path).unwrap();
    subpt_trainer::clip::Clip::from_tensors(
        weights,
        subpt_trainer::clip::config::Activation::QuickGelu,
        subpt_trainer::clip::Precision::Fp32,
        tch::Device::Cpu,
    )
    .unwrap()
}

/// The EuroSat fixture under `<dir>/data` and a tiny CLIP (seed 5) at `<dir>/tiny.safetensors`,
/// the setting of the cell-level tests; returns the weights' path.
pub fn eurosat_and_tiny_clip(dir: &Path) -> PathBuf {
    use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
    write_fixture(
        subpt_trainer::data::DatasetName::EuroSat,
        &dir.join("data"),
        &FixtureOptions::default(),
    )
    .unwrap();
    let w = dir.join("tiny.safetensors");
    tiny_clip(5, &w);
    w
}

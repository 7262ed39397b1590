//! Shared helpers of the integration tests: locating and running the Python oracles in
//! `tests/oracle/` (the peers our numbers are checked against) and reading what they write.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

// Locating the venv and running the oracles: the harness the crates without libtorch use too.
#[path = "../../../tests/harness.rs"]
mod harness;
#[allow(unused_imports)] // each test binary uses its own part
pub use harness::*;

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

//! Synthetic run results for the report's tests, and reading the tables back.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::result::RunResult;
use subpt_trainer::engine::spec::{Method, RunSpec};

pub fn spec(dataset: &str, method: Method, shots: usize, seed: u64) -> RunSpec {
    preset(
        Protocol::FewShot,
        dataset.parse().expect("a catalogue dataset"),
        PathBuf::from("data"),
        method,
        shots,
        seed,
        PathBuf::from("w.safetensors"),
    )
}

pub fn result(spec: RunSpec, acc: &[(SubsampleClasses, f64)]) -> RunResult {
    RunResult {
        accuracy: acc.iter().copied().collect(),
        ..RunResult::new(spec)
    }
}

pub fn fewshot(dataset: &str, method: Method, shots: usize, seed: u64, acc: f64) -> RunResult {
    result(
        spec(dataset, method, shots, seed),
        &[(SubsampleClasses::All, acc)],
    )
}

pub fn b2n(dataset: &str, method: Method, seed: u64, base: f64, new: f64) -> RunResult {
    let mut s = spec(dataset, method, 16, seed);
    s.protocol = Protocol::BaseToNovel;
    s.subsample = SubsampleClasses::Base;
    s.eval_subsets = vec![SubsampleClasses::Base, SubsampleClasses::New];
    if let Some(p) = s.subpt.as_mut() {
        (p.rank, p.early_epochs) = (10, 30);
    }
    let mut r = result(
        s,
        &[(SubsampleClasses::Base, base), (SubsampleClasses::New, new)],
    );
    r.hm = Some(2.0 * base * new / (base + new));
    r
}

pub fn write(dir: &Path, r: &RunResult) {
    let name = format!(
        "{}_{}_{}_{}_{}",
        r.spec.dataset, r.spec.method, r.spec.shots, r.spec.subsample, r.spec_hash
    );
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("result.json"), serde_json::to_vec(r).unwrap()).unwrap();
}

/// Rows of a CSV written by the report, as header-keyed maps.
pub fn csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

pub fn find<'a>(
    rows: &'a [BTreeMap<String, String>],
    want: &[(&str, &str)],
) -> &'a BTreeMap<String, String> {
    let hits: Vec<_> = rows
        .iter()
        .filter(|r| {
            want.iter()
                .all(|(k, v)| r.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(hits.len(), 1, "rows matching {want:?} in {rows:#?}");
    hits[0]
}

pub fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} in {row:?}"))
}

pub fn close(a: f64, b: f64) {
    // CSV cells carry four decimals.
    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
}

pub fn with_weights(mut r: RunResult, path: &str, digest: char) -> RunResult {
    r.spec.weights = PathBuf::from(path);
    r.spec_hash = r.spec.hash();
    r.identity = Some(subpt_trainer::store::Identity {
        spec: r.spec_hash.clone(),
        numerics: subpt_trainer::engine::inputs::NUMERICS_VERSION,
        weights: std::iter::repeat_n(digest, 64).collect(),
        items: BTreeMap::new(),
        files: BTreeMap::new(),
    });
    r
}

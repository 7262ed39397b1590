//! A stored result counts only while it is a result of what its cell would compute now:
//! replacing the weights or cutting the test split redoes every cell that read them (and their
//! dependants), while moving the output directory or changing the feature cache redoes nothing
//! that does not need it. Facts are read from grid-summary.json and the results themselves.
use crate::common;
use common::{ok, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;

fn bench(d: &Path, args: &[&str]) -> String {
    ok(Command::new(BIN).current_dir(d).args(args))
}

/// Data, weights and a three-method grid (zsclip, coop, coop_sub: 4 cells with the features).
fn setup(d: &Path, cache: &str) -> PathBuf {
    bench(
        d,
        &[
            "prepare",
            "fashion-mnist",
            "--out",
            "data",
            "--per-class",
            "6",
            "--val-per-class",
            "2",
        ],
    );
    bench(d, &["prepare", "tiny-clip", "--out", "w.safetensors"]);
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: t\nprotocols: [few_shot]\ndatasets: [fashion_mnist]\nshots: [2]\nseeds: [1]\n\
             methods: [zsclip, coop, coop_sub]\nweights: w.safetensors\ndata_root: data\n\
             output_dir: runs\ncache_dir: {cache}\n\
             overrides:\n  epochs: 3\n  subpt.early_epochs: 2\n  subpt.rank: 1\n"
        ),
    )
    .unwrap();
    grid
}

/// Runs the grid (into `out` when given) and returns its grid-summary.json.
fn run(d: &Path, out: Option<&str>) -> serde_json::Value {
    let mut args = vec!["--grid", "grid.yaml", "--device", "cpu"];
    if let Some(o) = out {
        args.extend(["--out", o]);
    }
    bench(d, &args);
    let dir = d.join(out.unwrap_or("runs"));
    serde_json::from_slice(&std::fs::read(dir.join("grid-summary.json")).unwrap()).unwrap()
}

fn count(s: &serde_json::Value, key: &str) -> usize {
    s[key].as_array().map_or(0, Vec::len)
}

/// The result of each method below `runs`, by method name.
fn results(runs: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    std::fs::read_dir(runs)
        .unwrap()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path().join("result.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some((v["spec"]["method"].as_str()?.to_string(), v))
        })
        .collect()
}

fn sha256(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(std::fs::read(p).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn replaced_weights_and_a_cut_test_split_redo_every_cell_that_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "cache");
    assert_eq!(count(&run(d, None), "ran"), 4);
    let before = results(&d.join("runs"));
    assert_eq!(
        before["coop"]["identity"]["weights"],
        sha256(&d.join("w.safetensors"))
    );

    // The same path, other weights.
    bench(
        d,
        &[
            "prepare",
            "tiny-clip",
            "--seed",
            "7",
            "--out",
            "w.safetensors",
        ],
    );
    let s = run(d, None);
    assert_eq!((count(&s, "already_done"), count(&s, "ran")), (0, 4), "{s}");
    let after = results(&d.join("runs"));
    assert_eq!(
        after["coop"]["identity"]["weights"],
        sha256(&d.join("w.safetensors"))
    );
    assert_ne!(after["zsclip"]["accuracy"], serde_json::Value::Null);
    assert_ne!(
        before["coop"]["identity"], after["coop"]["identity"],
        "the identity records the new weights"
    );

    // One test image fewer: every cell tests on the split, so every cell is redone.
    let split = d.join("data/fashion_mnist/split_fashion_mnist.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&split).unwrap()).unwrap();
    let n = doc["test"].as_array().unwrap().len();
    doc["test"].as_array_mut().unwrap().pop();
    std::fs::write(&split, doc.to_string()).unwrap();
    let s = run(d, None);
    assert_eq!((count(&s, "already_done"), count(&s, "ran")), (0, 4), "{s}");
    let cut = results(&d.join("runs"));
    assert_eq!(cut["zsclip"]["test_size"]["all"], n - 1);
    // And nothing changed: all done.
    assert_eq!(count(&run(d, None), "already_done"), 4);
}

#[test]
fn a_redone_source_redoes_the_subpt_cell_that_reads_its_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "cache");
    run(d, None);
    let coop = results(&d.join("runs"))["coop"]["spec_hash"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(d.join("runs").join(&coop).join("result.json")).unwrap();
    let s = run(d, None);
    // coop and the coop_sub cell that projects onto its trajectory.
    assert_eq!((count(&s, "already_done"), count(&s, "ran")), (2, 2), "{s}");
    // A trajectory changed behind the result's back is noticed too: CoOp, which recorded the
    // bytes it wrote, makes it again, and the SubPT cell after it reads the true one.
    let traj = d.join("runs").join(&coop).join("trajectory.safetensors");
    let made = std::fs::read(&traj).unwrap();
    let mut bytes = made.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&traj, bytes).unwrap();
    let s = run(d, None);
    assert_eq!((count(&s, "already_done"), count(&s, "ran")), (2, 2), "{s}");
    assert_eq!(std::fs::read(&traj).unwrap(), made);
}

#[test]
fn moving_the_output_or_changing_the_cache_redoes_only_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, "cache");
    run(d, None);
    let ids = |s: &serde_json::Value| {
        let mut v: Vec<String> = ["already_done", "ran"]
            .iter()
            .flat_map(|k| s[k].as_array().unwrap().clone())
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let first = run(d, None);
    // Moved as a whole: the cells keep their ids and their results.
    std::fs::rename(d.join("runs"), d.join("moved")).unwrap();
    let moved = run(d, Some("moved"));
    assert_eq!(count(&moved, "already_done"), 4, "{moved}");
    assert_eq!(
        ids(&first),
        ids(&moved),
        "cell ids do not depend on the output directory"
    );
    // Another cache: only the feature cell encodes again.
    let text = std::fs::read_to_string(&grid)
        .unwrap()
        .replace("cache_dir: cache", "cache_dir: c2");
    std::fs::write(&grid, text).unwrap();
    let s = run(d, Some("moved"));
    assert_eq!((count(&s, "already_done"), count(&s, "ran")), (3, 1), "{s}");
    assert!(
        s["ran"][0].as_str().unwrap().starts_with("features-"),
        "{s}"
    );
}

/// Rows of a report CSV as (method, n) pairs of one dataset.
fn rows(csv: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = csv::Reader::from_path(csv)
        .unwrap()
        .deserialize::<std::collections::BTreeMap<String, String>>()
        .map(|r| r.unwrap())
        .filter(|r| r["dataset"] == "fashion_mnist")
        .map(|r| (r["method"].clone(), r["n"].clone()))
        .collect();
    out.sort();
    out
}

#[test]
fn an_edited_grid_reports_only_its_own_cells_and_names_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, "cache");
    run(d, None);
    let text = std::fs::read_to_string(&grid)
        .unwrap()
        .replace("epochs: 3", "epochs: 4");
    std::fs::write(&grid, text).unwrap();
    let out = bench(d, &["--grid", "grid.yaml", "--device", "cpu"]);
    // Zero-shot CLIP reads no epochs: its cell is the same, and done.
    assert!(
        out.contains("left out 2 result(s) of cells not in the grid")
            && out.contains("fashion_mnist coop 2-shot seed 1")
            && out.contains("2 already done"),
        "{out}"
    );
    let report = d.join("runs/report/fewshot.csv");
    let plain = |m: &str| (m.to_string(), "1".to_string());
    // (r = 1, t_early = 2 are off the paper's settings, so they are named.)
    let sub = "coop_sub [r=1 t=2]";
    assert_eq!(
        rows(&report),
        vec![plain("coop"), plain(sub), plain("zsclip")]
    );
    // `report` on the directory scopes to the grid last run there; --all takes everything,
    // the two versions told apart by the field that differs.
    let listed = bench(d, &["report", "--results", "runs"]);
    assert!(listed.contains("left out 2 result(s)"), "{listed}");
    assert_eq!(rows(&report).len(), 3);
    bench(d, &["report", "--results", "runs", "--all"]);
    let all = rows(&report);
    assert!(all.contains(&plain("zsclip")), "{all:?}");
    for m in ["coop", "coop_sub [r=1 t=2"] {
        for e in [3, 4] {
            let label = match m.contains('[') {
                true => format!("{m} epochs={e}]"),
                false => format!("{m} [epochs={e}]"),
            };
            assert!(all.contains(&plain(&label)), "{label} in {all:?}");
        }
    }
    assert_eq!(all.len(), 5);
}

#[test]
fn a_grid_over_two_weights_reports_both_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, "cache");
    bench(
        d,
        &[
            "prepare",
            "tiny-clip",
            "--seed",
            "3",
            "--out",
            "w2.safetensors",
        ],
    );
    let text = std::fs::read_to_string(&grid).unwrap().replace(
        "weights: w.safetensors",
        "weights: [w.safetensors, w2.safetensors]",
    );
    std::fs::write(&grid, text).unwrap();
    let s = run(d, None);
    assert_eq!(count(&s, "ran"), 8, "{s}");
    let got = rows(&d.join("runs/report/fewshot.csv"));
    let mut want = Vec::new();
    for m in ["coop [", "coop_sub [r=1 t=2 ", "zsclip ["] {
        for w in ["w", "w2"] {
            want.push((format!("{m}weights={w}]"), "1".to_string()));
        }
    }
    want.sort();
    assert_eq!(got, want);
}

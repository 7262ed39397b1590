//! The paper's claims on the shipped CLIP (`assets/shapes-clip.safetensors.gz`) with the shipped
//! `configs/claims.yaml` (base-to-novel on `shapes_ruled`), read from the report's
//! `claims.json` (what `report` and `make demo` print): the grid runs fresh, on data
//! `prepare shapes` writes into the target dir.
//!
//! Claim (ii): every CoOp seed ends below zero-shot on the novel classes, and NFL and SubPT each
//! win back at least half of the drop. Claim (i) on the base classes: CoOp's accuracy rises
//! above zero-shot's, then falls by more than twice its seed std; SubPT's does not. Both hold on
//! the shipped model under libtorch's AVX2, AVX-512 and default kernel sets (`scripts/kernels.sh`;
//! the README's tables), which moved single seeds by at most 0.10 points. Across other pretrainings
//! (`benchmarks/claims_robustness.sh`) the drop holds on every model, NFL's half of it does not:
//! this test is about the shipped bytes.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use common::BIN;

/// The claims' dataset.
const DATASET: &str = "shapes_ruled";

/// The least any CoOp seed's novel accuracy ends below zero-shot's, and the least mean drop:
/// half the smallest seen on the shipped model (14.40 and 18.38, under the default kernels).
const MIN_DROP_EACH: f64 = 7.0;
const MIN_DROP_MEAN: f64 = 9.0;

fn claims_json(dir: &Path) -> Value {
    let p = dir.join("report/claims.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn find(list: &Value, pred: impl Fn(&Value) -> bool) -> &Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("no such claim in {list:#}"))
}

#[test]
fn the_papers_claims_hold_on_the_shipped_clip() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("paper-claims");
    let data = work.join("data");
    common::ok(
        Command::new(BIN)
            .args(["prepare", "shapes", "--dataset", DATASET, "--out"])
            .arg(&data),
    );
    let runs = work.join("claims");
    let cache = work.join("cache");
    let _ = std::fs::remove_dir_all(&runs);
    let _ = std::fs::remove_dir_all(&cache);
    // The shipped grid with the paper's methods only: the other remedies it also lists are
    // reported (README), not claimed, and would double the test's time.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(root.join("configs/claims.yaml")).unwrap();
    let methods = shipped
        .lines()
        .find(|l| l.starts_with("methods:"))
        .expect("claims.yaml lists its methods");
    let paper = "methods: [zsclip, coop, coop_nfl, coop_sub, coop_sub_nfl]";
    std::fs::create_dir_all(&work).unwrap();
    let grid = work.join("claims.yaml");
    std::fs::write(&grid, shipped.replace(methods, paper)).unwrap();
    common::ok(
        Command::new("mpirun")
            .args(["-n", "2", "--oversubscribe", BIN, "--grid"])
            .arg(&grid)
            .arg("--weights")
            .arg(root.join("assets/shapes-clip.safetensors.gz"))
            .args(["--device", "cpu", "--threads", "1", "--progress", "plain"])
            .arg("--data-root")
            .arg(&data)
            .arg("--cache")
            .arg(&cache)
            .arg("--out")
            .arg(&runs),
    );
    let claims = claims_json(&runs);
    let f = |v: &Value| v.as_f64().unwrap();
    let d = find(&claims["novel_drop"], |d| d["dataset"] == DATASET);
    let zero_shot = f(&d["zero_shot"]);
    let coop: Vec<f64> = d["coop"].as_object().unwrap().values().map(f).collect();
    assert_eq!(coop.len(), 3, "three CoOp seeds: {d:#}");
    let recovered = |m: &str| f(&d["remedies"][m][1]);

    // Zero-shot CLIP names unseen compositions: novel accuracy over 50 classes (chance 2 %).
    assert!(zero_shot >= 60.0, "zero-shot novel {zero_shot:.2}");
    // Claim (ii): every CoOp seed ends below zero-shot on the novel classes.
    for c in &coop {
        assert!(
            zero_shot - c >= MIN_DROP_EACH,
            "CoOp novel {c:.2} vs zero-shot {zero_shot:.2}: {d:#}"
        );
    }
    assert!(f(&d["drop_mean"]) >= MIN_DROP_MEAN, "{d:#}");
    // NFL and SubPT each win back at least half of the drop (claim (ii) as the paper states
    // it); SubPT+NFL too.
    for m in ["coop_nfl", "coop_sub", "coop_sub_nfl"] {
        assert!(
            recovered(m) >= 0.5,
            "{m} recovers {:.2}: {d:#}",
            recovered(m)
        );
    }
    assert_eq!(d["holds"], true, "{d:#}");
    // Claim (i) on the base classes: CoOp rises above zero-shot, then falls by more than twice
    // its seed std; SubPT falls by no more than twice its own and ends above CoOp.
    let r = find(&claims["rise_and_fall"], |r| {
        r["dataset"] == DATASET && r["subset"] == "base"
    });
    let (c, s) = (&r["coop"], &r["subpt"]);
    assert!(
        f(&c["peak"]) > f(&r["zero_shot"]),
        "CoOp never above zero-shot: {r:#}"
    );
    assert!(
        f(&c["fall"]) > 2.0 * f(&c["end_std"]),
        "CoOp does not fall: {r:#}"
    );
    assert!(
        f(&s["fall"]) <= 2.0 * f(&s["end_std"]),
        "SubPT falls: {r:#}"
    );
    assert!(f(&s["end"]) > f(&c["end"]), "SubPT ends below CoOp: {r:#}");
    assert_eq!(r["holds"], true, "{r:#}");
    // The report's arithmetic: the drop is zero-shot minus CoOp's mean.
    let coop_mean = coop.iter().sum::<f64>() / 3.0;
    assert!((f(&d["drop_mean"]) - (zero_shot - coop_mean)).abs() < 1e-9);
}

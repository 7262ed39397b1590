//! The paper's claims on the shipped CLIP (`assets/shapes-clip.safetensors.gz`) with the shipped
//! `configs/claims.yaml`, read from the report's `claims.json` (what `report` and `make demo`
//! print): the grid runs fresh, on data `prepare shapes` writes into the target dir.
//!
//! What is asserted is what the robustness study (`benchmarks/claims_robustness.sh` over four
//! pretraining seeds, and the shipped model's grid under libtorch's default, AVX2 and AVX-512
//! kernel sets; the README's robustness tables) found in every run, with margins below the
//! smallest value seen. The paper's claims as the tool states them (`claims.md`'s "holds") are
//! not asserted: on this world they hold on one pretraining seed of four (see the README).
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::BIN;

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
            .args(["prepare", "shapes", "--dataset", "patterns", "--out"])
            .arg(&data),
    );
    let runs = work.join("claims");
    let cache = work.join("cache");
    let _ = std::fs::remove_dir_all(&runs);
    let _ = std::fs::remove_dir_all(&cache);
    let grid = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/claims.yaml");
    common::ok(
        Command::new("mpirun")
            .args(["-n", "2", "--oversubscribe", BIN, "--grid"])
            .arg(&grid)
            .args(["--device", "cpu", "--threads", "1", "--progress", "plain"])
            .arg("--data-root")
            .arg(&data)
            .arg("--cache")
            .arg(&cache)
            .arg("--out")
            .arg(&runs),
    );
    let claims = claims_json(&runs);
    let d = find(&claims["novel_drop"], |d| d["dataset"] == "patterns");
    let f = |v: &Value| v.as_f64().unwrap();
    let zero_shot = f(&d["zero_shot"]);
    let coop: Vec<f64> = d["coop"].as_object().unwrap().values().map(f).collect();
    assert_eq!(coop.len(), 3, "three CoOp seeds: {d:#}");
    let coop_mean = coop.iter().sum::<f64>() / 3.0;
    let novel = |m: &str| f(&d["remedies"][m][0]);

    // Zero-shot CLIP names unseen compositions: novel accuracy over 25 classes (chance 4 %);
    // the study saw 72.8-87.9.
    assert!(zero_shot >= 60.0, "zero-shot novel {zero_shot:.2}");
    // Claim (ii)'s direction: 200 epochs of CoOp on the base classes leave its mean novel
    // accuracy below zero-shot's. Every pretraining and kernel set showed it, by 0.5-8.0
    // points (the shipped model: 2.4).
    assert!(
        coop_mean < zero_shot,
        "CoOp novel {coop_mean:.2} vs zero-shot {zero_shot:.2}: {d:#}"
    );
    // SubPT+NFL keeps novel accuracy at zero-shot's: 0.1-0.4 points above it everywhere
    // (recovering 103-115 % of CoOp's drop); asserted within one point.
    let both = novel("coop_sub_nfl");
    assert!(
        both >= zero_shot - 1.0,
        "SubPT+NFL novel {both:.2} vs zero-shot {zero_shot:.2}: {d:#}"
    );
    // and ends above CoOp's (by 0.6-8.2 points in the study).
    assert!(
        both > coop_mean,
        "SubPT+NFL novel {both:.2} vs CoOp {coop_mean:.2}: {d:#}"
    );
    // The report's arithmetic: the drop is zero-shot minus CoOp's mean.
    assert!((f(&d["drop_mean"]) - (zero_shot - coop_mean)).abs() < 1e-9);
}

//! `report`: the paper's claims read off a grid (claims.json, claims.md): claim (i), the rise
//! and fall of CoOp's accuracy, and claim (ii), its novel drop and what each remedy wins back.
use std::path::Path;
use subpt_bench::report::collect::Scope;
use subpt_bench::report::generate;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::result::{CurvePoint, RunResult};
use subpt_trainer::engine::spec::Method;

use crate::common;
use common::results::*;

/// The report of every result below `results` (into `results/r`, no published numbers): its
/// claims.json and claims.md.
fn claims_of(results: &Path) -> (serde_json::Value, String) {
    let out = results.join("r");
    generate(results, &results.join("no-reference"), &out, &Scope::All).unwrap();
    let c = serde_json::from_slice(&std::fs::read(out.join("claims.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("claims.md")).unwrap();
    (c, md)
}

/// A base-to-novel run whose novel accuracy follows `curve` (epoch, accuracy) and ends at its
/// last point.
fn b2n_curve(method: Method, seed: u64, curve: &[(usize, f64)]) -> RunResult {
    let end = curve.last().unwrap().1;
    let mut r = b2n("dtd", method, seed, 70.0, end);
    r.curves = curve
        .iter()
        .map(|&(epoch, new)| CurvePoint {
            epoch,
            lr: 0.002,
            train_loss: 1.0,
            train_accuracy: 50.0,
            test: [(SubsampleClasses::Base, 70.0), (SubsampleClasses::New, new)]
                .into_iter()
                .collect(),
        })
        .collect();
    r
}

#[test]
fn claim_one_counts_the_rise_from_zero_shot_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    for (seed, end) in [(1, 74.0), (2, 75.0), (3, 76.0)] {
        // CoOp's best novel accuracy is its first evaluation, above zero-shot's 80: tuning
        // rose from CLIP before epoch 10, then fell by 7 points (seed std 1).
        write(
            &res,
            &b2n_curve(Method::Coop, seed, &[(10, 82.0), (20, 79.0), (30, end)]),
        );
        write(
            &res,
            &b2n_curve(Method::CoopSub, seed, &[(10, 81.0), (20, 81.0), (30, 81.0)]),
        );
    }
    let claim = |dir: &Path| -> serde_json::Value {
        claims_of(dir).0["rise_and_fall"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["subset"] == "new")
            .unwrap()
            .clone()
    };
    // Without zero-shot runs the first evaluation is the start: no rise, no claim.
    let alone = claim(&res);
    assert_eq!(alone["holds"], false, "{alone:#}");
    assert!(alone["zero_shot"].is_null());
    // Zero-shot CLIP as a grid runs it: one run, shots 0 and seed 0, for the 16-shot cells.
    let mut zs = b2n("dtd", Method::Zsclip, 1, 70.0, 80.0);
    zs.spec = zs.spec.reduced_to_what_it_reads();
    zs.spec_hash = zs.spec.hash();
    assert_eq!((zs.spec.shots, zs.spec.seed), (0, 0));
    write(&res, &zs);
    let anchored = claim(&res);
    assert_eq!(anchored["zero_shot"], 80.0);
    assert_eq!(anchored["holds"], true, "{anchored:#}");
    // Results written before carry their grid's shots and seeds: they anchor it the same.
    let old = tmp.path().join("old");
    for seed in 1..=3 {
        write(&old, &b2n("dtd", Method::Zsclip, seed, 70.0, 80.0));
    }
    for e in std::fs::read_dir(&res).unwrap() {
        let d = e.unwrap().path();
        if !d.join("result.json").exists() {
            continue;
        }
        let r: RunResult =
            serde_json::from_slice(&std::fs::read(d.join("result.json")).unwrap()).unwrap();
        if r.spec.method != Method::Zsclip {
            write(&old, &r);
        }
    }
    assert_eq!(claim(&old)["holds"], true);
}

/// The claims (claims.json, claims.md) of a dtd grid: zero-shot at `zero_shot` on the novel
/// classes, CoOp and NFL at the given novel accuracies per seed.
fn novel_claims(zero_shot: f64, runs: &[(u64, f64, f64)]) -> (serde_json::Value, String) {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    write(&res, &b2n("dtd", Method::Zsclip, 1, 70.0, zero_shot));
    for &(seed, coop, nfl) in runs {
        write(&res, &b2n("dtd", Method::Coop, seed, 70.0, coop));
        write(&res, &b2n("dtd", Method::CoopNfl, seed, 70.0, nfl));
    }
    let (c, md) = claims_of(&res);
    (c["novel_drop"][0].clone(), md)
}

#[test]
fn claim_two_gives_each_share_its_standard_error_paired_by_seed() {
    // CoOp 60 / 62 / 64: a mean drop of 18. NFL gains 10, 9 and 11 on the same seeds: a share
    // of 10 / 18, and differences of std 1, so a standard error of 1 / sqrt(3) / 18. Unpaired,
    // NFL's spread (std 2.65) and CoOp's (2) would make it 3.3 times as wide.
    let (d, md) = novel_claims(80.0, &[(1, 60.0, 70.0), (2, 62.0, 71.0), (3, 64.0, 75.0)]);
    let share = d["remedies"]["coop_nfl"][1].as_f64().unwrap();
    let se = d["recovery_se"]["coop_nfl"].as_f64().unwrap();
    assert!((share - 10.0 / 18.0).abs() < 1e-12, "{d:#}");
    assert!((se - 1.0 / 3f64.sqrt() / 18.0).abs() < 1e-12, "{d:#}");
    assert!(md.contains("72.00 (56 ± 3 %)"), "{md}");
}

#[test]
fn claim_two_reads_no_share_of_a_drop_that_is_not_there() {
    // CoOp's mean equals zero-shot's but for float rounding (one seed above, two below): a
    // share of it would be a ratio of rounding errors, in the quadrillions of percent.
    let (d, md) = novel_claims(
        88.45,
        &[(1, 88.95, 88.5), (2, 88.3, 88.0), (3, 88.1, 87.95)],
    );
    assert!(d["drop_mean"].as_f64().unwrap().abs() < 1e-9, "{d:#}");
    assert!(d["remedies"]["coop_nfl"][1].is_null(), "{d:#}");
    assert!(d["recovery_se"].get("coop_nfl").is_none(), "{d:#}");
    assert_eq!(d["holds"], false);
    assert!(md.contains("88.15 (no drop)"), "{md}");
}

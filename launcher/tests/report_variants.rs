//! `report`: runs that would share a table row are told apart by what differs, and zero-shot
//! CLIP (one run for every shot count and seed) sits beside them.
use std::collections::BTreeMap;
use subpt_bench::report::collect::Scope;
use subpt_bench::report::generate;
use subpt_trainer::engine::spec::Method;

use crate::common;
use common::results::*;

/// Runs that differ only in their weights, or only in one override, get rows of their own
/// named by what differs; fields that differ nowhere stay out of the labels.
#[test]
fn runs_that_differ_in_weights_or_an_override_get_their_own_labelled_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    for seed in [1, 2] {
        let a = fewshot("dtd", Method::Coop, 4, seed, 60.0);
        write(&res, &with_weights(a, "models/a.safetensors", 'a'));
        let b = fewshot("dtd", Method::Coop, 4, seed, 70.0);
        write(&res, &with_weights(b, "models/b.safetensors", 'b'));
        // The same file name in another directory, other contents: the same cell id (ids
        // keep the file name), so it lives in another results directory.
        let c = fewshot("dtd", Method::Coop, 4, seed, 80.0);
        write(
            &res.join("elsewhere"),
            &with_weights(c, "other/b.safetensors", 'c'),
        );
        let mut lr = fewshot("dtd", Method::Coop, 4, seed, 50.0);
        lr.spec.lr = 0.01;
        write(&res, &with_weights(lr, "models/a.safetensors", 'a'));
    }
    let out = tmp.path().join("r");
    let summary = generate(&res, &tmp.path().join("none"), &out, &Scope::All).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let rows = csv(&out.join("fewshot.csv"));
    let by_method: BTreeMap<&str, &str> = rows
        .iter()
        .filter(|r| r["dataset"] == "dtd")
        .map(|r| (r["method"].as_str(), r["mean"].as_str()))
        .collect();
    let expect = [
        ("coop [lr=0.002 weights=a]", "60.0000"),
        ("coop [lr=0.002 weights=b@bbbbbbbb]", "70.0000"),
        ("coop [lr=0.002 weights=b@cccccccc]", "80.0000"),
        ("coop [lr=0.01 weights=a]", "50.0000"),
    ];
    assert_eq!(by_method, expect.into_iter().collect(), "{rows:?}");
    assert!(rows.iter().all(|r| r["dataset"] != "dtd" || r["n"] == "2"));
    // In LaTeX the labels stay, and runs of other weights or learning rates are not ranked
    // against each other: no bold among four rows that each stand alone.
    let tex = std::fs::read_to_string(out.join("fewshot.tex")).unwrap();
    assert!(
        tex.contains(r"DTD & 4 & CoOp [lr=0.002 weights=b@bbbbbbbb] & 70.00 $\pm$ 0.00 \\"),
        "{tex}"
    );
    assert!(!tex.contains(r"\textbf"), "{tex}");
    assert!(
        tex.contains("rank only against rows with the same labels"),
        "{tex}"
    );
}

/// Two ablation grids read together whose SubPT runs meet at one (rank, t_early) but differ in
/// another setting keep a row each, named by what differs; none is dropped as a repeat.
#[test]
fn ablation_runs_of_two_grids_at_one_point_keep_their_own_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    for seed in [1, 2, 3] {
        for (epochs, acc, grid) in [(50, 60.0, "rank"), (100, 70.0, "early")] {
            let mut r = fewshot("dtd", Method::CoopSub, 4, seed, acc);
            r.spec.epochs = epochs;
            r.spec_hash = r.spec.hash();
            write(&res.join(grid), &r);
        }
    }
    let out = tmp.path().join("r");
    let summary = generate(&res, &tmp.path().join("none"), &out, &Scope::All).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let rows = csv(&out.join("ablations.csv"));
    let by_method: BTreeMap<&str, (&str, &str)> = rows
        .iter()
        .map(|r| (r["method"].as_str(), (r["n"].as_str(), r["mean"].as_str())))
        .collect();
    let expect = [
        ("coop_sub [epochs=100]", ("3", "70.0000")),
        ("coop_sub [epochs=50]", ("3", "60.0000")),
    ];
    assert_eq!(by_method, expect.into_iter().collect(), "{rows:?}");
}

/// Zero-shot CLIP as a grid runs it (one run: shots 0, seed 0) is a row of its own at 0 shots,
/// with no seed column, and a reference line on the shots chart; an override axis of the
/// learning methods is not its label.
#[test]
fn zero_shot_clip_is_one_run_beside_every_shot_count() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let mut zs = fewshot("dtd", Method::Zsclip, 4, 2, 55.0);
    zs.spec = zs.spec.reduced_to_what_it_reads();
    zs.spec_hash = zs.spec.hash();
    write(&res, &zs);
    for (shots, lr, acc) in [(1, 0.002, 58.0), (4, 0.002, 62.0), (4, 0.01, 64.0)] {
        for seed in [1, 2] {
            let mut r = fewshot("dtd", Method::Coop, shots, seed, acc);
            r.spec.lr = lr;
            r.spec_hash = r.spec.hash();
            write(&res, &r);
        }
    }
    let out = tmp.path().join("r");
    let summary = generate(&res, &tmp.path().join("none"), &out, &Scope::All).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let rows = csv(&out.join("fewshot.csv"));
    let zs = find(&rows, &[("dataset", "dtd"), ("method", "zsclip")]);
    assert_eq!((zs["shots"].as_str(), zs["n"].as_str()), ("0", "1"));
    assert_eq!(zs["mean"], "55.0000");
    assert!(!rows[0].contains_key("seed 0"), "{rows:?}");
    find(
        &rows,
        &[
            ("dataset", "dtd"),
            ("shots", "4"),
            ("method", "coop [lr=0.01]"),
        ],
    );
    let svg = std::fs::read_to_string(out.join("plots/fewshot_dtd.svg")).unwrap();
    assert!(
        svg.contains("zsclip"),
        "no zero-shot reference line in the chart"
    );
}

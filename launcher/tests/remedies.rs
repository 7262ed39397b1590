//! Every method of the table in one grid under `mpirun -n 2`, in CoCoOp's base-to-novel
//! protocol: base/novel/HM tables in CSV, Markdown and LaTeX, with the published averages of
//! that protocol (the shipped `results/reference/`) beside ours.
use std::path::Path;
use std::process::Command;
use subpt_trainer::engine::spec::Method;

use crate::common;
use common::{ok, BIN};

#[test]
fn a_grid_of_every_method_reports_beside_the_published_averages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::fixture(d, "tiny.safetensors");
    // The repository's layout: the grid under configs/, the published numbers beside it.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    std::fs::create_dir_all(d.join("configs")).unwrap();
    std::fs::create_dir_all(d.join("results/reference")).unwrap();
    for f in ["base_to_novel_cocoop.csv", "README.md"] {
        std::fs::copy(shipped.join(f), d.join("results/reference").join(f)).unwrap();
    }
    let methods: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    let grid = d.join("configs/grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: all\nprotocols: [base_to_novel_cocoop]\ndatasets: [fashion_mnist]\n\
             seeds: [1]\nmethods: [{}]\nweights: ../tiny.safetensors\ndata_root: ../data\n\
             output_dir: ../runs\ncache_dir: ../cache\n\
             overrides:\n  epochs: 2\n  batch_size: 8\n  subpt.early_epochs: 2\n  subpt.rank: 1\n",
            methods.join(", ")
        ),
    )
    .unwrap();
    ok(Command::new("mpirun")
        .args(["-n", "2", "--oversubscribe", BIN, "--grid"])
        .arg(&grid)
        .args(["--device", "cpu", "--threads", "1", "--progress", "plain"]));
    let report = d.join("runs/report");
    for ext in ["csv", "md", "tex"] {
        let p = report.join(format!("base_to_novel_cocoop.{ext}"));
        assert!(p.exists(), "{} missing", p.display());
    }
    // One row per method on the dataset, every one with base, novel and HM (the SubPT methods
    // labelled with the subspace this test trains, not the paper's).
    let table = common::results::csv(&report.join("base_to_novel_cocoop.csv"));
    for m in &methods {
        let row = table
            .iter()
            .find(|r| r["dataset"] == "fashion_mnist" && r["method"].split(' ').next() == Some(m))
            .unwrap_or_else(|| panic!("{m} missing from {table:?}"));
        for col in ["base", "novel", "hm"] {
            let v: f64 = row[col].parse().unwrap();
            assert!((0.0..=100.0).contains(&v), "{m} {col} {v}");
        }
    }
    // The published averages of this protocol beside our average rows.
    let reference = common::results::csv(&report.join("reference_base_to_novel_cocoop.csv"));
    let text = format!("{reference:?}");
    for published in ["KgCoOp", "ProGrad", "CoCoOp", "MaPLe", "PromptSRC"] {
        assert!(text.contains(published), "{published} missing: {text}");
    }
    assert!(
        text.contains("kgcoop") && text.contains("prograd_sub"),
        "ours missing: {text}"
    );
    let tex = std::fs::read_to_string(report.join("base_to_novel_cocoop.tex")).unwrap();
    for name in [
        "KgCoOp",
        "ProGrad+SubPT",
        "SubPT+NFL",
        "\\toprule",
        "\\caption{",
    ] {
        assert!(tex.contains(name), "{name} missing from\n{tex}");
    }
}

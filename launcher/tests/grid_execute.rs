//! Running a grid in one process: every cell runs once, reruns resume, a broken result is
//! redone, failures are isolated to their cell and its dependants, and a run killed with
//! SIGKILL loses nothing that had finished.
use std::path::Path;
use std::process::Output;

use crate::common;
use common::{bench, succeeded as ok, tally};

/// A small Fashion-MNIST under `data`: at most `per_class` images per class and split.
fn fashion_mnist(data: &Path, per_class: &str, val: &str) {
    ok(bench(&[
        "prepare",
        "fashion-mnist",
        "--out",
        data.to_str().unwrap(),
        "--per-class",
        per_class,
        "--val-per-class",
        val,
    ]));
}

/// Data, a good and a broken weights file, and a grid over both.
fn setup(d: &Path, epochs: usize, weights: &str) -> std::path::PathBuf {
    fashion_mnist(&d.join("data"), "6", "2");
    ok(bench(&[
        "prepare",
        "tiny-clip",
        "--out",
        d.join("good.safetensors").to_str().unwrap(),
    ]));
    std::fs::write(d.join("bad.safetensors"), b"not weights").unwrap();
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: t\nprotocols: [few_shot]\ndatasets: [fashion_mnist]\nshots: [2]\nseeds: [1]\n\
             methods: [zsclip, coop, coop_sub]\nweights: {weights}\ndata_root: data\n\
             output_dir: runs\ncache_dir: cache\n\
             overrides:\n  epochs: {epochs}\n  subpt.early_epochs: 2\n  subpt.rank: 1\n"
        ),
    )
    .unwrap();
    grid
}

fn grid_run(grid: &Path) -> Output {
    bench(&["--grid", grid.to_str().unwrap(), "--device", "cpu"])
}

#[test]
fn per_class_says_that_it_caps_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(&[
        "prepare",
        "fashion-mnist",
        "--out",
        dir.path().to_str().unwrap(),
        "--per-class",
        "3",
        "--val-per-class",
        "1",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--per-class 3") && err.contains("30 test images instead of 10000"),
        "{err}"
    );
    // A cap at the test file's 1,000 per class cuts nothing, and says nothing.
    let out = bench(&[
        "prepare",
        "fashion-mnist",
        "--out",
        dir.path().join("full").to_str().unwrap(),
        "--per-class",
        "1000",
        "--val-per-class",
        "0",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("instead of"), "{err}");
}

#[test]
fn reruns_resume_and_redo_broken_results() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path(), 3, "good.safetensors");
    let runs = dir.path().join("runs");
    let first = ok(grid_run(&grid));
    assert_eq!(tally(&runs), (4, 0, 4, 0, 0));
    // The console says the same.
    assert!(
        first.contains("4 cells, 0 already done, 4 ran, 0 failed, 0 skipped"),
        "{first}"
    );
    ok(grid_run(&grid));
    assert_eq!(tally(&runs), (4, 4, 0, 0, 0));
    // A truncated result does not count as done (zero-shot's: nothing depends on it).
    let results: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path().join("result.json");
            p.exists().then_some(p)
        })
        .collect();
    assert_eq!(results.len(), 3);
    let zsclip = results
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("\"method\": \"zsclip\"")
        })
        .unwrap();
    let text = std::fs::read_to_string(zsclip).unwrap();
    std::fs::write(zsclip, &text[..text.len() / 2]).unwrap();
    // The dry run reads the same done-check: the truncated cell is the one left to run.
    let listing = ok(bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]));
    assert!(
        listing.contains("already done: 3 of 4 cells") && listing.contains("for the 1 left"),
        "{listing}"
    );
    let undone: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(" zsclip ") || l.contains(" coop"))
        .filter(|l| !l.contains(" yes "))
        .collect();
    assert!(
        undone.len() == 1 && undone[0].contains(" zsclip "),
        "{listing}"
    );
    ok(grid_run(&grid));
    assert_eq!(tally(&runs), (4, 3, 1, 0, 0));
    // A wiped cache undoes the feature cell (the cells' results stand).
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    ok(grid_run(&grid));
    assert_eq!(tally(&runs), (4, 3, 1, 0, 0));
    assert!(dir.path().join("runs/report/fewshot.csv").exists());
}

#[test]
fn a_failing_cell_skips_its_dependants_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path(), 3, "[good.safetensors, bad.safetensors]");
    // A learning rate of 1e30 makes CoOp diverge after the warm-up epoch.
    let text = std::fs::read_to_string(&grid).unwrap() + "  lr: [0.002, 1.0e30]\n";
    std::fs::write(&grid, text).unwrap();
    let out = grid_run(&grid);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "a failed cell must fail the run: {text}"
    );
    // Good weights: the test features, zsclip (one cell: it reads no learning rate) and coop
    // and coop_sub at the sane rate ran; coop at 1e30 failed and its coop_sub was skipped.
    // Bad weights: the test features failed and all five cells after them were skipped.
    assert_eq!(tally(&dir.path().join("runs")), (12, 0, 4, 2, 6), "{text}");
    assert!(
        text.contains("bad.safetensors") && text.contains("loss is not finite"),
        "the errors name the file and the divergence: {text}"
    );
    let failures = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("failure.json").exists())
        .count();
    assert_eq!(failures, 2);
    // The same account, machine-readable.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/grid-summary.json")).unwrap())
            .unwrap();
    assert_eq!(record["cells"], 12);
    assert_eq!(record["ran"].as_array().unwrap().len(), 4);
    assert_eq!(record["skipped"].as_object().unwrap().len(), 6);
    let errors: Vec<&str> = record["failed"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().any(|e| e.contains("loss is not finite")));
}

#[test]
fn sigkill_mid_grid_loses_nothing_finished() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path(), 40, "good.safetensors");
    let mut child = std::process::Command::new(common::BIN)
        .args(["--grid", grid.to_str().unwrap(), "--device", "cpu"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = dir.path().join("runs");
    let done = || {
        std::fs::read_dir(&runs)
            .map(|r| {
                r.filter(|e| e.as_ref().unwrap().path().join("result.json").exists())
                    .count()
            })
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while done() == 0 && start.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished = done();
    assert!(finished >= 1, "no cell finished before the kill");
    ok(grid_run(&grid));
    // The test features were done before any cell.
    let (_, done_before, ran, failed, _) = tally(&dir.path().join("runs"));
    assert_eq!((done_before, ran, failed), (finished + 1, 3 - finished, 0));
}

#[test]
fn domain_generalisation_cells_evaluate_the_imagenet_model_on_each_variant() {
    use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
    use subpt_trainer::data::DatasetName;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ds in [
        DatasetName::ImageNet,
        DatasetName::ImageNetV2,
        DatasetName::ImageNetSketch,
        DatasetName::ImageNetA,
        DatasetName::ImageNetR,
    ] {
        write_fixture(ds, &d.join("data"), &FixtureOptions::default()).unwrap();
    }
    ok(bench(&[
        "prepare",
        "tiny-clip",
        "--out",
        d.join("tiny.safetensors").to_str().unwrap(),
    ]));
    let grid = d.join("dg.yaml");
    std::fs::write(
        &grid,
        "name: dg\nprotocols: [domain_generalization]\ndatasets: [imagenet]\nseeds: [1]\n\
         methods: [zsclip, coop]\nweights: tiny.safetensors\ndata_root: data\n\
         output_dir: runs\ncache_dir: cache\noverrides:\n  epochs: 2\n",
    )
    .unwrap();
    ok(grid_run(&grid));
    assert_eq!(tally(&d.join("runs")), (15, 0, 15, 0, 0));
    let table = std::fs::read_to_string(d.join("runs/report/domain_generalisation.csv")).unwrap();
    for target in ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"] {
        assert!(table.contains(target), "{target} missing from\n{table}");
    }
}

/// A cell another process holds is not run here while it is held; given back without a
/// result (its process died or failed), it is claimed and run here.
#[test]
fn a_cell_another_process_holds_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, 2, "good.safetensors");
    let ids = dry_run_ids(&grid);
    let coop = ids.iter().find(|(_, m)| m == "coop").unwrap().0.clone();
    // This process stands in for another grid run working on the CoOp cell.
    let held = match subpt_bench::grid::claim::take(&d.join("runs"), &coop).unwrap() {
        subpt_bench::grid::claim::Taken::Mine(c) => c,
        subpt_bench::grid::claim::Taken::Elsewhere(h) => panic!("held by {h}"),
    };
    let mut run = std::process::Command::new(common::BIN)
        .args([
            "--grid",
            grid.to_str().unwrap(),
            "--device",
            "cpu",
            "--progress",
            "plain",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The zero-shot cell finishes; CoOp (and SubPT after it) wait.
    let zs = ids.iter().find(|(_, m)| m == "zsclip").unwrap().0.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !d.join("runs").join(&zs).join("result.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "zero-shot never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the run did not wait for the held cell"
    );
    assert!(!d.join("runs").join(&coop).join("result.json").exists());
    drop(held);
    let out = run.wait_with_output().unwrap();
    let text = ok(out);
    assert!(text.contains("0 failed"), "{text}");
    assert_eq!(tally(&d.join("runs")), (4, 0, 4, 0, 0));
}

/// (cell id, method) of every cell a dry run of `grid` lists.
fn dry_run_ids(grid: &Path) -> Vec<(String, String)> {
    let text = ok(bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]));
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // The `done` column is empty for a cell not done.
            let method = if f.get(4) == Some(&"yes") {
                f.get(6)
            } else {
                f.get(5)
            };
            (f.get(3) == Some(&"train")).then(|| (f[1].to_string(), method.unwrap().to_string()))
        })
        .collect()
}

#[test]
fn verify_full_decodes_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fashion_mnist(&data, "2", "1");
    let png = std::fs::read_dir(data.join("fashion_mnist/images/sandal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("test_"))
        .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&png, &bytes[..bytes.len() - 20]).unwrap();
    let args = [
        "prepare",
        "verify",
        "--dataset",
        "fashion_mnist",
        "--root",
        data.to_str().unwrap(),
    ];
    // Its header is intact, so a header check passes; decoding finds the cut.
    ok(bench(&args));
    let out = bench(&[&args[..], &["--full"]].concat());
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&png.display().to_string()), "{text}");
}

#[test]
fn train_names_what_it_needs_and_lists_its_choices() {
    let out = bench(&[
        "train",
        "--dataset",
        "fashion_mnist",
        "--root",
        "data",
        "--method",
        "coop",
        "--weights",
        "w.safetensors",
        "--out",
        "o",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--shots") && err.contains("--seed"), "{err}");
    let help = ok(bench(&["train", "--help"]));
    for name in [
        "coop_sub_nfl",
        "cocoop",
        "fashion_mnist_noise",
        "oxford_pets",
        "base",
    ] {
        assert!(help.contains(name), "{name} in:\n{help}");
    }
    let out = bench(&["train", "--method", "coopp", "--out", "o"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("coop_sub"), "{err}");
}

#[test]
fn a_grid_whose_cells_all_fail_says_no_report_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path(), 2, "bad.safetensors");
    let out = grid_run(&grid);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("report not written") && !text.contains("report in"),
        "{text}"
    );
    // Failed and skipped cells are named by what they are, not only by hash.
    assert!(
        text.contains("failed  fashion_mnist test features")
            && text.contains("skipped fashion_mnist coop_sub 2-shot seed 1 ["),
        "{text}"
    );
}

#[test]
fn train_sets_evaluate_context_like_any_other_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, 2, "good.safetensors");
    ok(grid_run(&grid));
    let ctx = std::fs::read_dir(d.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("context.safetensors"))
        .find(|p| p.is_file())
        .expect("a trained context");
    let out = d.join("eval");
    ok(bench(&[
        "train",
        "--dataset",
        "fashion_mnist",
        "--root",
        d.join("data").to_str().unwrap(),
        "--method",
        "coop",
        "--shots",
        "2",
        "--seed",
        "1",
        "--weights",
        d.join("good.safetensors").to_str().unwrap(),
        "--device",
        "cpu",
        "--set",
        &format!("/evaluate_context={:?}", ctx.display().to_string()),
        "--set",
        &format!("/cache_dir={:?}", d.join("cache").display().to_string()),
        "--out",
        out.to_str().unwrap(),
    ]));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["spec"]["evaluate_context"], ctx.display().to_string());
    assert_eq!(
        r["curves"].as_array().map(|c| c.len()),
        Some(0),
        "evaluation only"
    );
}

/// `train` starts from the protocol's presets and takes fields by the grids' dotted paths, the
/// JSON-pointer form being an alias of the same assignment.
#[test]
fn train_takes_a_protocol_and_dotted_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, 2, "good.safetensors");
    let (root, weights) = (d.join("data"), d.join("good.safetensors"));
    let train = |method: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "fashion_mnist",
            "--root",
            root.to_str().unwrap(),
            "--method",
            method,
            "--shots",
            "2",
            "--seed",
            "1",
            "--weights",
            weights.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        bench(&args)
    };
    let spec_of = |out: &str, set: &[&str]| -> serde_json::Value {
        let o = d.join(out);
        let cache = format!("cache_dir={:?}", d.join("cache").display().to_string());
        let mut extra = vec!["--protocol", "base_to_novel", "--set", &cache];
        extra.extend(["--set", "epochs=2", "--set", "subpt.early_epochs=2"]);
        for s in set {
            extra.extend(["--set", s]);
        }
        ok(train("coop_sub_nfl", &o, &extra));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(o.join("result.json")).unwrap()).unwrap();
        r["spec"].clone()
    };
    let dotted = spec_of("dotted", &["subpt.rank=2"]);
    assert_eq!(dotted["protocol"], "base_to_novel");
    assert_eq!(dotted["subsample"], "base");
    assert_eq!(dotted["eval_subsets"], serde_json::json!(["base", "new"]));
    assert_eq!(dotted["nfl"]["names"], "novel");
    assert_eq!(dotted["subpt"]["rank"], 2);
    let pointer = spec_of("pointer", &["/subpt/rank=2"]);
    assert_eq!(pointer, dotted);
    // A misspelt field is named.
    let out = bench(&[
        "train",
        "--spec",
        d.join("dotted/result.json").to_str().unwrap(),
        "--set",
        "subpt.rnak=3",
        "--out",
        d.join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rnak") && err.contains("early_epochs"),
        "{err}"
    );
    // One run: a setting its method has no part for is refused, not dropped as a grid drops it.
    let out = train("coop", &d.join("y"), &["--set", "subpt.rank=3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`subpt.rank` does not apply: `subpt` is not set for method coop"),
        "{err}"
    );
    assert!(!d.join("y/result.json").exists());
}

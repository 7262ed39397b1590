//! Every number traceable to the bytes that made it: changed pixels, corrupt cache payloads
//! and corrupt or missing trained files are seen and redone; a moved data root is the same
//! run; a result counts as done exactly when the report accepts it; settings that cannot make
//! a result are refused before anything runs; a stopped grid says how far it got.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use common::{bench, succeeded as ok, tally, BIN};

/// A small Fashion-MNIST, a tiny CLIP, and a grid (zero-shot, CoOp, SubPT on CoOp's
/// trajectory) over them. Returns the grid file.
fn setup(d: &Path) -> PathBuf {
    common::fixture(d, "w.safetensors");
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        "name: t\nprotocols: [few_shot]\ndatasets: [fashion_mnist]\nshots: [2]\nseeds: [1]\n\
         methods: [zsclip, coop, coop_sub]\nweights: w.safetensors\ndata_root: data\n\
         output_dir: runs\ncache_dir: cache\n\
         overrides:\n  epochs: 3\n  subpt.early_epochs: 2\n  subpt.rank: 1\n",
    )
    .unwrap();
    grid
}

fn grid_run(grid: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--grid", grid.to_str().unwrap(), "--device", "cpu"];
    args.extend_from_slice(extra);
    bench(&args)
}

/// The cell directory of `method` under `runs`.
fn cell_of(runs: &Path, method: &str) -> PathBuf {
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("result.json"))
                .is_ok_and(|t| t.contains(&format!("\"method\": \"{method}\"")))
        })
        .unwrap_or_else(|| panic!("no {method} result under {}", runs.display()))
}

fn accuracy(cell: &Path) -> f64 {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cell.join("result.json")).unwrap()).unwrap();
    v["accuracy"]["all"].as_f64().unwrap()
}

/// Flips the sign bit of every fp32 value in a safetensors file's data, keeping it valid.
fn flip_signs(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    for i in (8 + header..b.len()).step_by(4) {
        b[i + 3] ^= 0x80;
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn changed_pixels_redo_every_cell_that_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    assert_eq!(tally(&runs), (4, 0, 4, 0, 0));
    // Another image's bytes copied over one test image, in place (same path, same inode).
    let images = dir.path().join("data/fashion_mnist/images");
    let first_test = |class: &str| -> PathBuf {
        let mut tests: Vec<PathBuf> = std::fs::read_dir(images.join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("test_")
            })
            .collect();
        tests.sort();
        tests.remove(0)
    };
    let (boot, other) = (first_test("ankle_boot"), first_test("bag"));
    assert_ne!(
        std::fs::read(&boot).unwrap(),
        std::fs::read(&other).unwrap()
    );
    std::fs::copy(&other, &boot).unwrap();
    ok(grid_run(&grid, &[]));
    // The features, zero-shot's and CoOp's test sets and SubPT (after CoOp) are redone.
    assert_eq!(tally(&runs), (4, 0, 4, 0, 0));
    // A fresh cache agrees with the rerun: no stale features were served.
    let before = accuracy(&cell_of(&runs, "zsclip"));
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    std::fs::remove_dir_all(&runs).unwrap();
    ok(grid_run(&grid, &[]));
    assert_eq!(accuracy(&cell_of(&runs, "zsclip")), before);
}

#[test]
fn a_moved_data_root_redoes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    let moved = dir.path().join("elsewhere");
    std::fs::rename(dir.path().join("data"), &moved).unwrap();
    ok(grid_run(&grid, &["--data-root", moved.to_str().unwrap()]));
    assert_eq!(tally(&runs), (4, 4, 0, 0, 0));
    let link = dir.path().join("via-link");
    std::os::unix::fs::symlink(&moved, &link).unwrap();
    ok(grid_run(&grid, &["--data-root", link.to_str().unwrap()]));
    assert_eq!(tally(&runs), (4, 4, 0, 0, 0));
}

#[test]
fn corrupt_cache_payloads_are_replaced_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    let zs = accuracy(&cell_of(&runs, "zsclip"));
    let coop = accuracy(&cell_of(&runs, "coop"));
    // Every cache entry's data corrupted in place: signs flipped, still valid safetensors.
    let mut flipped = 0;
    for sub in ["", "views"] {
        let Ok(entries) = std::fs::read_dir(dir.path().join("cache").join(sub)) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "safetensors") {
                flip_signs(&p);
                flipped += 1;
            }
        }
    }
    assert!(flipped >= 3, "image, text and view entries: {flipped}");
    // Results are redone from scratch: the same numbers as before the corruption.
    std::fs::remove_dir_all(&runs).unwrap();
    let out = grid_run(&grid, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert_eq!(accuracy(&cell_of(&runs, "zsclip")), zs);
    assert_eq!(accuracy(&cell_of(&runs, "coop")), coop);
    assert!(err.contains("recomputing and replacing it"), "{err}");
    // Replaced: the next fresh run reads them without a warning.
    std::fs::remove_dir_all(&runs).unwrap();
    let out = grid_run(&grid, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(!err.contains("recomputing and replacing it"), "{err}");
}

#[test]
fn a_corrupt_or_missing_trajectory_redoes_its_maker_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    let coop = cell_of(&runs, "coop");
    let sub = accuracy(&cell_of(&runs, "coop_sub"));
    flip_signs(&coop.join("trajectory.safetensors"));
    ok(grid_run(&grid, &[]));
    // CoOp (its file changed) and SubPT (after it) are redone, from a true trajectory.
    assert_eq!(tally(&runs), (4, 2, 2, 0, 0));
    assert_eq!(accuracy(&cell_of(&runs, "coop_sub")), sub);
    std::fs::remove_file(coop.join("trajectory.safetensors")).unwrap();
    ok(grid_run(&grid, &[]));
    assert_eq!(tally(&runs), (4, 2, 2, 0, 0));
    assert_eq!(accuracy(&cell_of(&runs, "coop_sub")), sub);
}

#[test]
fn a_result_the_report_rejects_is_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    let zs = cell_of(&runs, "zsclip").join("result.json");
    // An accuracy no classifier has: the report refuses it, so the done-check does too.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&zs).unwrap()).unwrap();
    let all = v["accuracy"]["all"].as_f64().unwrap();
    v["accuracy"]["all"] = serde_json::json!(150.0);
    let edited = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(&zs, edited).unwrap();
    ok(grid_run(&grid, &[]));
    assert_eq!(tally(&runs), (4, 3, 1, 0, 0));
    assert_eq!(accuracy(&cell_of(&runs, "zsclip")), all);
}

#[test]
fn a_failed_recompute_is_reported_as_failed_not_with_old_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let runs = dir.path().join("runs");
    ok(grid_run(&grid, &[]));
    // Replaced weights that cannot load: every cell is redone and fails.
    std::fs::write(dir.path().join("w.safetensors"), b"not weights").unwrap();
    let out = grid_run(&grid, &[]);
    assert!(!out.status.success());
    let index = std::fs::read_to_string(runs.join("report/index.md")).unwrap_or_default();
    let csv = std::fs::read_to_string(runs.join("report/fewshot.csv")).unwrap_or_default();
    assert!(
        !csv.contains("coop"),
        "old numbers must not stand for the failed cells:\n{csv}"
    );
    assert!(
        index.contains("did not finish in the last run") || index.contains("report not written"),
        "{index}"
    );
}

#[test]
fn settings_that_cannot_make_a_result_fail_the_dry_run_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("  lr: -0.5\n", "overrides.lr", "positive learning rate"),
        ("  batch_size: 0\n", "overrides.batch_size", "at least 1"),
        ("  epochs: 0\n", "overrides.epochs", "at least 1 epoch"),
        (
            "  prompt.n_ctx: 0\n",
            "overrides.prompt.n_ctx",
            "nothing to learn",
        ),
        (
            "  subpt.rank: 40\n",
            "overrides.subpt.rank",
            "between 1 and t_early",
        ),
        (
            "  subpt.early_epochs: 1\n",
            "overrides.subpt.early_epochs",
            "fewer than 2",
        ),
    ];
    for (line, key, why) in cases {
        let grid = dir.path().join("g.yaml");
        std::fs::write(
            &grid,
            format!(
                "name: t\nprotocols: [few_shot]\ndatasets: [dtd]\nshots: [1]\nseeds: [1]\n\
                 methods: [coop, coop_sub]\nweights: w.pt\ndata_root: data\n\
                 output_dir: runs\noverrides:\n{line}"
            ),
        )
        .unwrap();
        let out = bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{line}: accepted");
        assert!(err.contains(key) && err.contains(why), "{line}: {err}");
        assert!(
            err.contains("g.yaml:11:"),
            "{line}: the line is named: {err}"
        );
    }
    // A key the preset set is named with the preset and how to change it: SubPT's rank of
    // the paper's 1-shot preset (5) against a shorter early stage set by the user.
    let grid = dir.path().join("g.yaml");
    std::fs::write(
        &grid,
        "name: t\nprotocols: [few_shot]\ndatasets: [dtd]\nshots: [1]\nseeds: [1]\n\
         methods: [coop_sub]\nweights: w.pt\ndata_root: data\noutput_dir: runs\n\
         overrides:\n  subpt.early_epochs: 3\n",
    )
    .unwrap();
    let out = bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("subpt.rank")
            && err.contains("preset")
            && err.contains("overrides.subpt.rank"),
        "{err}"
    );
}

/// A grid whose settings fail for many cells names each cause once, with how many cells it
/// hits, in place of the first cell's alone.
#[test]
fn refused_settings_are_grouped_by_cause() {
    let dir = tempfile::tempdir().unwrap();
    let grid = dir.path().join("g.yaml");
    std::fs::write(
        &grid,
        "name: t\nprotocols: [few_shot]\ndatasets: [dtd]\nshots: [1, 2]\nseeds: [1, 2, 3]\n\
         methods: [coop, coop_sub]\nweights: w.pt\ndata_root: data\noutput_dir: runs\n\
         overrides:\n  lr: [0.002, -0.5]\n  subpt.rank: 40\n",
    )
    .unwrap();
    let out = bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = |key: &str| {
        err.lines()
            .find(|l| l.contains(&format!("key `{key}`")))
            .unwrap_or_else(|| panic!("no line for {key}: {err}"))
            .to_string()
    };
    // Every cell with lr -0.5 (both methods); SubPT's with a good lr, one cause per shot
    // count (each preset's t_early bounds the rank).
    let lr = line("overrides.lr");
    assert!(
        lr.contains("g.yaml:11:") && lr.contains("[12 cells, e.g. dtd"),
        "{lr}"
    );
    let rank: Vec<&str> = err.lines().filter(|l| l.contains("subpt.rank")).collect();
    assert_eq!(rank.len(), 2, "{err}");
    for (l, shots) in rank.iter().zip(["1-shot", "2-shot"]) {
        let want = format!("[3 cells, e.g. dtd coop_sub {shots}");
        assert!(l.contains("g.yaml:12:") && l.contains(&want), "{l}");
    }
}

#[test]
fn a_stopped_grid_says_how_far_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let grid = setup(dir.path());
    let text = std::fs::read_to_string(&grid)
        .unwrap()
        .replace("epochs: 3", "epochs: 5000");
    std::fs::write(&grid, text).unwrap();
    let child = Command::new(BIN)
        .args(["--grid", grid.to_str().unwrap(), "--device", "cpu"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once the feature cell is done and a training cell is under way.
    let runs = dir.path().join("runs");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&runs).map_or(true, |d| {
        !d.filter_map(Result::ok)
            .any(|e| e.path().join("features.json").exists())
    }) {
        assert!(started.elapsed().as_secs() < 120, "no cell finished");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signals a child process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("interrupted (SIGINT): 1/4 cells done") && err.contains("rerun"),
        "{err}"
    );
}

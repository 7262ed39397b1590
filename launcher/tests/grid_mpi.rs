//! Grids under mpirun: the shipped `configs/smoke.yaml` under `-n 1`, `-n 2` and `-n 4` runs
//! every cell exactly once wherever it lands and gives identical tables; data-parallel groups
//! (`--dp 2`) learn the same contexts as one rank; failed cells (bad weights, a diverging run)
//! stay isolated across ranks and groups; a SIGKILLed rank loses nothing finished.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use common::{ok, output, tally, BIN};

fn table(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join("report").join(name)).unwrap()
}

/// Fixture data and a tiny CLIP in `dir`.
/// The shipped smoke grid, with the data and weights where it expects them.
fn smoke(d: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/smoke.yaml");
    std::fs::create_dir_all(d.join("configs")).unwrap();
    std::fs::create_dir_all(d.join("results/smoke")).unwrap();
    common::fixture(&d.join("results/smoke"), "tiny-clip.safetensors");
    let grid = d.join("configs/smoke.yaml");
    std::fs::copy(shipped, &grid).unwrap();
    grid
}

/// Fixture data, a tiny CLIP and a broken weights file, and a grid over `methods` and
/// `weights`.
fn setup(d: &Path, protocols: &str, methods: &str, weights: &str, epochs: usize) -> PathBuf {
    common::fixture(d, "tiny.safetensors");
    std::fs::write(d.join("bad.safetensors"), b"not weights").unwrap();
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: m\nprotocols: [{protocols}]\ndatasets: [fashion_mnist]\nshots: [1, 2]\n\
             seeds: [1, 2]\nmethods: [{methods}]\nweights: {weights}\ndata_root: data\n\
             output_dir: runs\ncache_dir: cache\n\
             overrides:\n  epochs: {epochs}\n  subpt.early_epochs: 2\n  subpt.rank: 1\n"
        ),
    )
    .unwrap();
    grid
}

fn mpirun(n: &str, grid: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", n, "--oversubscribe", BIN, "--grid"])
        .arg(grid)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"])
        .args(extra);
    c
}

#[test]
fn one_two_and_four_ranks_give_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = smoke(d);
    let mut outs = Vec::new();
    for n in ["1", "2", "4"] {
        let out = d.join(format!("out{n}"));
        let text = ok(&mut mpirun(n, &grid, &out, &[]));
        assert_eq!(tally(&out), (33, 0, 33, 0, 0), "{n} ranks: {text}");
        let results = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("result.json").exists())
            .count();
        assert_eq!(results, 32, "{n} ranks");
        outs.push(out);
    }
    for name in ["fewshot.csv", "base_to_novel.csv", "ablations.csv"] {
        let one = table(&outs[0], name);
        assert!(one.lines().count() > 1, "{name} is empty");
        for o in &outs[1..] {
            assert_eq!(one, table(o, name), "{name} differs for {}", o.display());
        }
    }
}

/// result.json of every cell below `out`, keyed by what the cell is (paths in the spec differ
/// between output directories).
fn results(out: &Path) -> std::collections::BTreeMap<String, (PathBuf, serde_json::Value)> {
    std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| {
            let dir = e.unwrap().path();
            let text = std::fs::read_to_string(dir.join("result.json")).ok()?;
            let r: serde_json::Value = serde_json::from_str(&text).unwrap();
            let s = &r["spec"];
            let key = format!(
                "{} {} {} {}",
                s["method"], s["shots"], s["seed"], s["subsample"]
            );
            Some((key, (dir, r)))
        })
        .collect()
}

fn context(dir: &Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(dir.join("context.safetensors")).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("ctx").unwrap();
    Some(
        t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
    )
}

#[test]
fn data_parallel_groups_learn_what_one_rank_learns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = smoke(d);
    let (single, groups) = (d.join("single"), d.join("groups"));
    ok(&mut mpirun("1", &grid, &single, &[]));
    let text = ok(&mut mpirun("4", &grid, &groups, &["--dp", "2"]));
    assert_eq!(tally(&groups), (33, 0, 33, 0, 0), "{text}");
    let (a, b) = (results(&single), results(&groups));
    assert_eq!(a.len(), 32);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let mut compared = 0;
    for (key, (da, ra)) in &a {
        let (db, rb) = &b[key];
        if let Some(x) = context(da) {
            let y = context(db).expect("the data-parallel cell saved its context");
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = x
                .iter()
                .zip(&y)
                .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(
                diff <= 1e-5 * scale,
                "{key}: context differs by {diff} (scale {scale})"
            );
            compared += 1;
        }
        for (subset, acc) in ra["accuracy"].as_object().unwrap() {
            let other = rb["accuracy"][subset].as_f64().unwrap();
            let one_item = 100.0 / ra["test_size"][subset].as_f64().unwrap();
            assert!(
                (acc.as_f64().unwrap() - other).abs() <= one_item + 1e-9,
                "{key} {subset}: {acc} vs {other}"
            );
        }
    }
    // Every trained cell (CoCoOp's meta-net included in the reduction) has a context.
    assert_eq!(compared, 30);
}

#[test]
fn failed_cells_stay_isolated_across_ranks_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(
        d,
        "few_shot",
        "zsclip, coop, coop_sub",
        "[tiny.safetensors, bad.safetensors]",
        3,
    );
    // A learning rate of 1e30 makes CoOp diverge after the warm-up epoch: in a data-parallel
    // group every rank must stop at the same step.
    let text = std::fs::read_to_string(&grid).unwrap() + "  lr: [0.002, 1.0e30]\n";
    std::fs::write(&grid, text).unwrap();
    for (n, extra) in [("2", &[][..]), ("2", &["--dp", "2"][..])] {
        let out = d.join(format!("out{n}{}", extra.len()));
        let run = output(&mut mpirun(n, &grid, &out, extra));
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            !run.status.success(),
            "a failed cell must fail the run: {text}"
        );
        // Good weights: the test features and zsclip (one cell for every shot count, seed and
        // rate), then per shot count and seed coop and coop_sub at the sane rate run, coop at
        // 1e30 fails and its coop_sub is skipped. Bad weights: the test features fail and the
        // 17 cells after them are skipped.
        assert_eq!(tally(&out), (36, 0, 10, 5, 21), "-n {n} {extra:?}: {text}");
        assert!(
            text.contains("bad.safetensors") && text.contains("loss is not finite"),
            "the errors name the file and the divergence: {text}"
        );
        let with = |name: &str| {
            std::fs::read_dir(&out)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().join(name).exists())
                .count()
        };
        assert_eq!(with("failure.json"), 5);
        assert_eq!(with("result.json"), 9);
    }
}

/// The pid of world rank `rank` among the processes `mpirun` (pid `parent`) started.
fn rank_pid(parent: u32, rank: usize) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The parent pid is the second field after the parenthesised command name.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let mine = format!("OMPI_COMM_WORLD_RANK={rank}");
        (ppid == parent && env.split(|&b| b == 0).any(|v| v == mine.as_bytes())).then_some(pid)
    })
}

#[test]
fn sigkill_of_a_rank_mid_grid_loses_nothing_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(
        d,
        "few_shot",
        "zsclip, coop, coop_sub",
        "tiny.safetensors",
        200,
    );
    let out = d.join("runs");
    let mut job = mpirun("2", &grid, &out, &[])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let done = || if out.exists() { results(&out).len() } else { 0 };
    let start = std::time::Instant::now();
    while done() < 2 && start.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(done() >= 2, "no cells finished within 300 s");
    let victim = rank_pid(job.id(), 1).expect("rank 1 is running");
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = job.wait().unwrap();
    assert!(!status.success(), "mpirun must report the killed rank");
    let finished = done();
    // 2 shot counts x 2 seeds of coop and coop_sub, and one zero-shot cell.
    assert!(
        (2..9).contains(&finished),
        "{finished} of 9 cells finished before the kill"
    );
    let text = ok(&mut mpirun("2", &grid, &out, &[]));
    // The test features were done before any cell.
    let (_, before, ran, failed, _) = tally(&out);
    assert_eq!(
        (before, ran, failed),
        (finished + 1, 9 - finished, 0),
        "{finished} results before the rerun: {text}"
    );
}

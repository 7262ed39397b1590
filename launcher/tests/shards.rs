//! Array jobs as SLURM runs them, simulated with its environment: shard processes and a
//! plain grid process started together on one output directory and one cache finish the grid
//! with every cell run once and the tables one process writes; a shard killed mid-way and
//! started again finishes its part; the generated sbatch script parses and numbers its shards.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common;
use common::{bench, succeeded as ok, BIN};

/// Fixture data, a tiny CLIP and a grid of SubPT cells with their sources, two seeds.
fn setup(d: &Path, epochs: usize) -> PathBuf {
    common::fixture(d, "tiny.safetensors");
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: s\nprotocols: [few_shot, base_to_novel]\ndatasets: [fashion_mnist]\n\
             shots: [1, 4]\nseeds: [1, 2]\nmethods: [zsclip, coop, coop_sub, kgcoop, prograd]\n\
             weights: tiny.safetensors\ndata_root: data\noutput_dir: runs\ncache_dir: cache\n\
             overrides:\n  epochs: {epochs}\n  subpt.early_epochs: 2\n  subpt.rank: 1\n"
        ),
    )
    .unwrap();
    grid
}

/// A grid process on `out`, as SLURM array task `task` of `count` when given, claiming by
/// exclusive creation when `create`.
fn start(grid: &Path, out: &Path, task: Option<(usize, usize)>, create: bool) -> Child {
    let mut c = Command::new(BIN);
    c.args([
        "--grid",
        grid.to_str().unwrap(),
        "--device",
        "cpu",
        "--threads",
        "1",
    ])
    .args(["--progress", "plain", "--out", out.to_str().unwrap()])
    .env("SUBPT_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some((id, count)) = task {
        c.env("SLURM_ARRAY_JOB_ID", "4242")
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("SLURM_ARRAY_TASK_COUNT", count.to_string());
    }
    if create {
        c.env("SUBPT_CLAIMS", "create");
    }
    c.spawn().unwrap()
}

/// The cells a finished process's log says it ran (`done in`), asserting it succeeded.
fn ran(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    log.lines()
        .filter(|l| l.contains(" done in "))
        .filter_map(|l| l.split("cell=").nth(1))
        .map(|c| c.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Every CSV of a report, by file name.
fn tables(report: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(report)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn cell_ids(grid: &Path) -> Vec<String> {
    let text = ok(bench(&["--grid", grid.to_str().unwrap(), "--dry-run"]));
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let cell = f.len() > 3 && ["train", "features", "evaluate"].contains(&f[3]);
            cell.then(|| f[1].to_string())
        })
        .collect()
}

#[test]
fn shards_and_a_second_process_share_one_directory_and_run_each_cell_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, 3);
    let ids = cell_ids(&grid);
    assert!(ids.len() > 20, "{ids:?}");
    let one = d.join("one");
    let one_ran = ran(start(&grid, &one, None, false));
    assert_eq!(one_ran.len(), ids.len());

    // Two array tasks and one plain run, together, on one directory and cache.
    let shared = d.join("shared");
    let children = vec![
        start(&grid, &shared, Some((0, 2)), false),
        start(&grid, &shared, Some((1, 2)), false),
        start(&grid, &shared, None, false),
    ];
    let mut all: Vec<String> = children.into_iter().flat_map(ran).collect();
    all.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(
        all, want,
        "every cell ran exactly once over the three processes"
    );

    // The merged report equals one process's, table for table.
    ok(bench(&["report", "--results", shared.to_str().unwrap()]));
    ok(bench(&["report", "--results", one.to_str().unwrap()]));
    let (a, b) = (tables(&one.join("report")), tables(&shared.join("report")));
    assert!(
        a.contains_key("fewshot.csv") && a.contains_key("base_to_novel.csv"),
        "{a:?}"
    );
    assert_eq!(a, b);
}

#[test]
fn a_killed_shard_finishes_its_part_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, 30);
    let out = d.join("runs");
    // Both ways of claiming: flock, and exclusive creation (a requeued task finds its own
    // claims from before the kill and takes them over).
    for (round, mode) in ["flock", "create"].iter().enumerate() {
        let out = out.join(mode);
        let mut first = start(&grid, &out, Some((1, 2)), *mode == "create");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let results = std::fs::read_dir(&out)
                .map(|r| {
                    r.filter(|e| e.as_ref().unwrap().path().join("result.json").exists())
                        .count()
                })
                .unwrap_or(0);
            if results >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no result"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        first.kill().unwrap();
        let _ = first.wait();
        let again = ran(start(&grid, &out, Some((1, 2)), *mode == "create"));
        assert!(!again.is_empty());
        // Everything of shard 1 is done now: its dry run lists no cell left.
        let text = ok(bench(&[
            "--grid",
            grid.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "1/2",
            "--dry-run",
        ]));
        let (done, total) = done_of(&text);
        assert_eq!(done, total, "{text}");
    }
}

/// (done, total) from a dry run's "already done: N of M" line (N = 0 when the line is absent).
fn done_of(text: &str) -> (usize, usize) {
    let total = text
        .lines()
        .find_map(|l| l.split(": ").nth(1)?.split(" cells").next()?.parse().ok())
        .unwrap_or(0);
    let done = text
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("already done: ")?;
            rest.split(" of ").next()?.parse().ok()
        })
        .unwrap_or(0);
    (done, total)
}

#[test]
fn the_sbatch_script_parses_and_numbers_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tiny.safetensors"), b"").unwrap();
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        "name: s\nprotocols: [few_shot]\ndatasets: [fashion_mnist]\nshots: [1]\nseeds: [1, 2]\n\
         methods: [coop, coop_sub]\nweights: tiny.safetensors\ndata_root: data\n\
         output_dir: \"runs dir\"\ncache_dir: cache\n",
    )
    .unwrap();
    let script = ok(bench(&[
        "slurm",
        "--grid",
        grid.to_str().unwrap(),
        "--array",
        "4",
        "--time",
        "2:00:00",
        "--partition",
        "gpu",
    ]));
    for line in [
        "#SBATCH --array=0-3",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --time=2:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --requeue",
    ] {
        assert!(script.contains(line), "{line} missing from\n{script}");
    }
    assert!(
        d.join("runs dir/slurm").is_dir(),
        "the log directory exists before sbatch"
    );
    let path = d.join("job.sh");
    std::fs::write(&path, &script).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Each task of an array numbered from 5 runs its own shard, with the allocation's threads.
    for (id, shard) in [(5, "0/4"), (6, "1/4"), (8, "3/4")] {
        let out = Command::new("bash")
            .arg(&path)
            .env("SUBPT_BENCH", "echo")
            .env("SLURM_ARRAY_TASK_ID", id.to_string())
            .env("SLURM_ARRAY_TASK_MIN", "5")
            .env("SLURM_ARRAY_TASK_COUNT", "4")
            .env("SLURM_CPUS_PER_TASK", "6")
            .output()
            .unwrap();
        let args = String::from_utf8_lossy(&out.stdout);
        assert!(
            args.contains(&format!("--shard {shard} ")),
            "task {id}: {args}"
        );
        assert!(
            args.contains("--threads 6") && args.contains("--device cuda"),
            "{args}"
        );
        assert!(args.contains("runs dir"), "{args}");
    }
}

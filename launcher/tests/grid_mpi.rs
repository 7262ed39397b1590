//! Grids under mpirun: the same grid under `-n 1`, `-n 2` and `-n 4` runs every cell exactly
//! once wherever it lands and gives identical tables; data-parallel groups (`--dp 2`) learn the
//! same contexts as one rank; failed cells stay isolated across ranks and groups.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_subpt-bench");

fn output(cmd: &mut Command) -> Output {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("start process")
}

fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn table(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join("report").join(name)).unwrap()
}

/// Fixture data, a tiny CLIP (and a broken weights file), and a grid over `methods` and
/// `weights`.
fn setup(d: &Path, protocols: &str, methods: &str, weights: &str) -> PathBuf {
    ok(Command::new(BIN)
        .args([
            "prepare",
            "fashion-mnist",
            "--per-class",
            "6",
            "--val-per-class",
            "2",
            "--out",
        ])
        .arg(d.join("data")));
    ok(Command::new(BIN)
        .args(["prepare", "tiny-clip", "--out"])
        .arg(d.join("tiny.safetensors")));
    std::fs::write(d.join("bad.safetensors"), b"not weights").unwrap();
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        format!(
            "name: m\nprotocols: [{protocols}]\ndatasets: [fashion_mnist]\nshots: [1, 2]\n\
             seeds: [1, 2]\nmethods: [{methods}]\nweights: {weights}\ndata_root: data\n\
             output_dir: runs\ncache_dir: cache\n\
             overrides:\n  epochs: 3\n  subpt.early_epochs: 2\n  subpt.rank: 1\n"
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

const ALL: &str = "zsclip, coop, coop_nfl, coop_sub, coop_sub_nfl";

#[test]
fn one_two_and_four_ranks_give_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let grid = setup(d, "few_shot, base_to_novel", ALL, "tiny.safetensors");
    let mut outs = Vec::new();
    for n in ["1", "2", "4"] {
        let out = d.join(format!("out{n}"));
        let text = ok(&mut mpirun(n, &grid, &out, &[]));
        assert!(
            text.contains("30 cells, 0 already done, 30 ran, 0 failed, 0 skipped"),
            "{n} ranks: {text}"
        );
        let results = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("result.json").exists())
            .count();
        assert_eq!(results, 30, "{n} ranks");
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
    let grid = setup(d, "few_shot, base_to_novel", ALL, "tiny.safetensors");
    let (single, groups) = (d.join("single"), d.join("groups"));
    ok(&mut mpirun("1", &grid, &single, &[]));
    let text = ok(&mut mpirun("4", &grid, &groups, &["--dp", "2"]));
    assert!(text.contains("30 cells, 0 already done, 30 ran"), "{text}");
    let (a, b) = (results(&single), results(&groups));
    assert_eq!(a.len(), 30);
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
    assert_eq!(compared, 24, "every trained cell has a context");
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
    );
    for (n, extra) in [("2", &[][..]), ("2", &["--dp", "2"][..])] {
        let out = d.join(format!("out{n}{}", extra.len()));
        let run = output(&mut mpirun(n, &grid, &out, extra));
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            !run.status.success(),
            "a failed cell must fail the run: {text}"
        );
        // Per seed and shot count: good weights run 3 cells; bad weights fail zsclip and coop
        // and skip coop_sub, which needs coop's trajectory.
        assert!(
            text.contains("24 cells, 0 already done, 12 ran, 8 failed, 4 skipped"),
            "-n {n} {extra:?}: {text}"
        );
        assert!(
            text.contains("bad.safetensors"),
            "the error names the file: {text}"
        );
        let failures = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("failure.json").exists())
            .count();
        assert_eq!(failures, 8);
        assert_eq!(results(&out).len(), 12);
    }
}

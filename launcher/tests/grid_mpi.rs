//! The same grid under `mpirun -n 1`, `-n 2` and `-n 4`: every cell runs exactly once wherever
//! it lands, and the report tables are identical.
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_subpt-bench");

fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("start process");
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

#[test]
fn one_two_and_four_ranks_give_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
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
    let grid = d.join("grid.yaml");
    std::fs::write(
        &grid,
        "name: m\nprotocols: [few_shot, base_to_novel]\ndatasets: [fashion_mnist]\nshots: [1, 2]\n\
         seeds: [1, 2]\nmethods: [zsclip, coop, coop_nfl, coop_sub, coop_sub_nfl]\n\
         weights: tiny.safetensors\ndata_root: data\noutput_dir: runs\ncache_dir: cache\n\
         overrides:\n  epochs: 3\n  subpt.early_epochs: 2\n  subpt.rank: 1\n",
    )
    .unwrap();
    let mut outs = Vec::new();
    for n in ["1", "2", "4"] {
        let out = d.join(format!("out{n}"));
        let text = ok(Command::new("mpirun")
            .args(["-n", n, "--oversubscribe", BIN, "--grid"])
            .arg(&grid)
            .arg("--out")
            .arg(&out)
            .args(["--device", "cpu"]));
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

//! What the binary-level tests share: the binary, and running it (or mpirun) as root.
#![allow(dead_code)] // each test crate uses its own subset
use std::process::{Command, Output};

pub mod results;

pub const BIN: &str = env!("CARGO_BIN_EXE_subpt-bench");

/// Runs `cmd` with Open MPI allowed as root and more ranks than cores.
pub fn output(cmd: &mut Command) -> Output {
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .output()
        .expect("start process")
}

/// [`output`], asserting success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The binary run with `args` (not through mpirun).
pub fn bench(args: &[&str]) -> Output {
    output(Command::new(BIN).args(args))
}

/// Stdout of a finished run, asserting it succeeded (stdout and stderr shown if not).
pub fn succeeded(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (cells, already done, ran, failed, skipped) from the `grid-summary.json` a grid run left in
/// `out_dir`.
pub fn tally(out_dir: &std::path::Path) -> (usize, usize, usize, usize, usize) {
    let path = out_dir.join("grid-summary.json");
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    let n = |k: &str| match &v[k] {
        serde_json::Value::Array(a) => a.len(),
        serde_json::Value::Object(o) => o.len(),
        _ => panic!("{}: no `{k}`", path.display()),
    };
    (
        v["cells"].as_u64().unwrap() as usize,
        n("already_done"),
        n("ran"),
        n("failed"),
        n("skipped"),
    )
}

/// The fixture most suites run on: a Fashion-MNIST of 6 images per class (2 for validation)
/// under `<dir>/data` and a tiny random-init CLIP at `<dir>/<weights>`.
pub fn fixture(dir: &std::path::Path, weights: &str) {
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
        .arg(dir.join("data")));
    ok(Command::new(BIN)
        .args(["prepare", "tiny-clip", "--out"])
        .arg(dir.join(weights)));
}

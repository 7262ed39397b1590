//! Data-parallel training under mpirun equals single-process training: same global batches and
//! seed, gradients summed over MPI before SubPT's projection, so the context trajectories agree
//! within float tolerance (summation order is the only difference).
use std::path::Path;
use std::process::Command;
use tch::Tensor;

use crate::common;
use common::{ok as run, BIN};

fn train_args(dir: &Path, method: &str, out: &str) -> Vec<String> {
    let s = |x: &str| x.to_string();
    vec![
        s("train"),
        s("--dataset"),
        s("fashion_mnist"),
        s("--root"),
        dir.join("data").display().to_string(),
        s("--method"),
        s(method),
        s("--shots"),
        s("4"),
        s("--seed"),
        s("3"),
        s("--weights"),
        dir.join("tiny.safetensors").display().to_string(),
        s("--epochs"),
        s("4"),
        s("--device"),
        s("cpu"),
        s("--set"),
        s("/batch_size=16"),
        s("--set"),
        // Rank 1 of 2 trajectory points: a higher rank would include a zero-variance direction
        // whose orientation is numerical noise.
        s(r#"/subpt={"rank":1,"early_epochs":2}"#),
        s("--set"),
        format!("/cache_dir={:?}", dir.join("cache").display().to_string()),
        s("--out"),
        dir.join(out).display().to_string(),
    ]
}

fn trajectory(path: &Path) -> std::collections::BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path.join("trajectory.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

/// SubPT+NFL (terms in one backward, the projection after the all-reduce), KgCoOp (a batch
/// term over every class) and ProGrad+SubPT (two backward passes, both gradients all-reduced
/// before ProGrad's rule, which is not linear, then the projection).
#[test]
fn dp_over_mpi_matches_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::fixture(d, "tiny.safetensors");
    for (method, groups) in [
        ("coop_sub_nfl", &["2", "3"][..]),
        ("kgcoop", &["2"][..]),
        ("prograd_sub", &["2"][..]),
    ] {
        dp_matches(d, method, groups);
    }
}

fn dp_matches(d: &Path, method: &str, groups: &[&str]) {
    let single_out = format!("single-{method}");
    run(Command::new(BIN).args(train_args(d, method, &single_out)));
    let single = trajectory(&d.join(&single_out));
    assert_eq!(single.len(), 5);
    for ranks in groups {
        let out = format!("dp{ranks}-{method}");
        run(Command::new("mpirun")
            .args(["-n", ranks, "--oversubscribe", BIN])
            .args(train_args(d, method, &out))
            .arg("--dp"));
        let dp = trajectory(&d.join(&out));
        for (k, a) in &single {
            let b = &dp[k];
            let rel = ((a - b).abs().max() / a.abs().max()).double_value(&[]);
            assert!(
                rel < 1e-5,
                "{method}, {ranks} ranks, {k}: relative difference {rel}"
            );
        }
        let moved = (&single["ctx_4"] - &single["theta0"])
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            moved > 1e-4,
            "{method}: the context did not train ({moved})"
        );
        assert!(d.join(&out).join("result.json").exists());
    }
}

/// Runs `cmd` to completion, killing it after `secs` (a hung group fails the test instead of
/// the test suite hanging).
fn finish_within(cmd: &mut Command, secs: u64) -> std::process::Output {
    let mut child = cmd
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mpirun");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > secs {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_rank_failing_alone_stops_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::fixture(d, "tiny.safetensors");
    std::fs::write(d.join("bad.safetensors"), b"not weights").unwrap();
    // Rank 1 alone cannot load its weights; rank 0 sets up and reaches the first gradient sum.
    let good = train_args(d, "coop_sub_nfl", "out");
    let mut bad = train_args(d, "coop_sub_nfl", "out");
    let w = bad.iter().position(|a| a == "--weights").unwrap() + 1;
    bad[w] = d.join("bad.safetensors").display().to_string();
    let out = finish_within(
        Command::new("mpirun")
            .args(["-n", "1", BIN])
            .args(&good)
            .arg("--dp")
            .args([":", "-n", "1", BIN])
            .args(&bad)
            .arg("--dp"),
        120,
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("not a weights file"),
        "rank 1's own error: {text}"
    );
    assert!(
        text.contains("1 other rank(s) of the data-parallel group failed"),
        "rank 0 learns of it: {text}"
    );
    assert!(!d.join("out/result.json").exists());
}

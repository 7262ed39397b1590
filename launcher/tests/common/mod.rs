//! What the binary-level tests share: the binary, and running it (or mpirun) as root.
#![allow(dead_code)] // each test crate uses its own subset
use std::process::{Command, Output};

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

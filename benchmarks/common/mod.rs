//! Set-up shared by the benchmarks: a random-init CLIP of a given shape, ImageNet's class names
//! and the machine's load, so every benchmark states the conditions it measured under.
#![allow(dead_code)]
use subpt_trainer::clip::config::Activation;
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::clip::{Clip, Precision};
use tch::Device;

/// A CLIP of shape `spec` with weights drawn from seed 0, fp32 on the CPU.
pub fn random_clip(spec: &Spec) -> Clip {
    Clip::from_tensors(
        generate(spec, 0),
        Activation::QuickGelu,
        Precision::Fp32,
        Device::Cpu,
    )
    .expect("generated weights load")
}

/// ImageNet's 1000 class names (CoOp's list), as the largest realistic prompt set.
pub fn imagenet_names() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets/imagenet_classnames_only.txt"
    );
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// `/proc/loadavg`: timings are only comparable within one run under one load.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

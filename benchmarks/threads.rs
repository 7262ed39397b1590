//! One CoOp training step (frozen image tower on a batch, then the prompt learner's class
//! features forward and backward) at 1 and at N libtorch threads, for models from the tiny
//! test CLIP to ViT-B/16's shape, interleaved so that both counts see the same machine load.
//! The rule `threads::intra_op_threads` applies for small models comes from this table.
//!
//! cargo bench -p subpt-trainer --bench threads -- [--threads N] [--rounds R] [--batch B]
mod common;
use std::time::Instant;
use subpt_trainer::clip::config::{Activation, TextConfig, VisionConfig, VitConfig};
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::clip::{Clip, Precision};
use subpt_trainer::methods::coop;
use subpt_trainer::methods::prompt_learner::{PromptConfig, PromptLearner};
use tch::{Device, Kind, Tensor};

fn model(name: &str) -> Spec {
    let text = |width, layers, heads| TextConfig {
        width,
        layers,
        heads,
        context_length: 77,
        vocab_size: 49408,
    };
    let vit = |width, layers, heads, patch, resolution| {
        VisionConfig::Vit(VitConfig {
            width,
            layers,
            heads,
            patch,
            resolution,
        })
    };
    match name {
        "tiny" => Spec::tiny_vit(),
        // The embedded Fashion-MNIST CLIP (`subpt-bench pretrain`).
        "demo" => Spec {
            embed_dim: 64,
            text: text(64, 4, 1),
            vision: vit(64, 4, 1, 8, 32),
        },
        "small" => Spec {
            embed_dim: 256,
            text: text(256, 6, 4),
            vision: vit(256, 6, 4, 16, 112),
        },
        // ViT-B/16's shape.
        "base" => Spec {
            embed_dim: 512,
            text: text(512, 12, 8),
            vision: vit(768, 12, 12, 16, 224),
        },
        _ => panic!("unknown model {name}"),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let arg = |flag: &str, default: usize| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .map_or(default, |v| v.parse().expect("a count"))
    };
    let many = arg("--threads", 2) as i32;
    let rounds = arg("--rounds", 5);
    let batch = arg("--batch", 32) as i64;
    println!(
        "CoOp step (batch {batch}, 10 classes, n_ctx 16), median of {rounds} interleaved rounds; load average {}",
        common::load_average()
    );
    println!(
        "{:>6} {:>12} | {:>10} {:>10} | {:>9}",
        "model",
        "params",
        "1 thread",
        format!("{many} threads"),
        "1 / N"
    );
    let tok = Tokenizer::new();
    let names: Vec<String> = [
        "tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
        "boot",
    ]
    .map(String::from)
    .to_vec();
    for name in ["tiny", "demo", "small", "base"] {
        let spec = model(name);
        let tensors = generate(&spec, 0);
        let params: i64 = tensors
            .iter()
            .filter(|(k, _)| k.as_str() != "token_embedding.weight")
            .map(|(_, t)| t.numel() as i64)
            .sum();
        let clip = Clip::from_tensors(tensors, Activation::QuickGelu, Precision::Fp32, Device::Cpu)
            .expect("generated weights load");
        let res = clip.config.vision.resolution();
        let pixels = Tensor::randn([batch, 3, res, res], (Kind::Float, Device::Cpu));
        let labels = Tensor::arange(batch, (Kind::Int64, Device::Cpu)).remainder(10);
        tch::manual_seed(1);
        let cfg = PromptConfig {
            n_ctx: 16,
            ..Default::default()
        };
        let mut learner = PromptLearner::new(&clip, &tok, &names, cfg).expect("names fit");
        learner.ctx = learner.ctx.set_requires_grad(true);
        let step = || {
            let t = Instant::now();
            let img = tch::no_grad(|| clip.encode_image(&pixels));
            let (loss, _) = coop::loss(&clip, &learner, &img, &labels);
            let _ = Tensor::run_backward(&[&loss], &[&learner.ctx], false, false);
            t.elapsed().as_secs_f64()
        };
        let (mut one, mut n) = (Vec::new(), Vec::new());
        tch::set_num_threads(1);
        step(); // warm-up
        for _ in 0..rounds {
            tch::set_num_threads(1);
            one.push(step());
            tch::set_num_threads(many);
            n.push(step());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, b) = (median(&mut one), median(&mut n));
        println!(
            "{name:>6} {params:>12} | {:>8.1}ms {:>8.1}ms | {:>9.2}",
            a * 1e3,
            b * 1e3,
            a / b
        );
    }
}

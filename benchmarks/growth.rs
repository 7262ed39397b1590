//! How a CoOp epoch's cost grows with the class count (10, 100, 1000 ImageNet names) and the
//! shots (1 to 16): one epoch of batches of 32 random images through the frozen image tower,
//! the loss against every class's prompt features and the backward pass to the context, on the
//! embedded Fashion-MNIST CLIP's shape (ViT 4 x 64 at 32 px, text 4 x 64), one thread. With
//! train-view sharing the image tower's part is paid once per grid instead of once per cell:
//! the `images` column is that part.
//!
//! cargo bench -p subpt-trainer --bench growth -- [--classes 10,100,1000] [--shots 1,2,4,8,16]
mod common;
use std::time::Instant;
use subpt_trainer::clip::config::{TextConfig, VisionConfig, VitConfig};
use subpt_trainer::clip::random_init::Spec;
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::methods::coop;
use subpt_trainer::methods::prompt_learner::{PromptConfig, PromptLearner};
use tch::{Device, Kind, Tensor};

fn list(argv: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map_or(default.to_vec(), |v| {
            v.split(',').map(|x| x.parse().expect("counts")).collect()
        })
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let classes = list(&argv, "--classes", &[10, 100, 1000]);
    let shots = list(&argv, "--shots", &[1, 2, 4, 8, 16]);
    tch::set_num_threads(1);
    let spec = Spec {
        embed_dim: 64,
        text: TextConfig {
            width: 64,
            layers: 4,
            heads: 1,
            context_length: 77,
            vocab_size: 49408,
        },
        vision: VisionConfig::Vit(VitConfig {
            width: 64,
            layers: 4,
            heads: 1,
            patch: 8,
            resolution: 32,
        }),
    };
    let clip = common::random_clip(&spec);
    let tok = Tokenizer::new();
    let all = common::imagenet_names();
    println!(
        "one CoOp epoch, batch 32, n_ctx 16, 1 thread; load average {}",
        common::load_average()
    );
    println!(
        "{:>7} {:>5} {:>7} | {:>9} {:>9} {:>9} | {:>10}",
        "classes", "shots", "batches", "epoch", "images", "text", "per batch"
    );
    for &n in &classes {
        let names: Vec<String> = (0..n).map(|i| all[i * all.len() / n].clone()).collect();
        tch::manual_seed(1);
        let cfg = PromptConfig {
            n_ctx: 16,
            ..Default::default()
        };
        let mut l = PromptLearner::new(&clip, &tok, &names, cfg).expect("names fit");
        l.ctx = l.ctx.set_requires_grad(true);
        for &k in &shots {
            let items = n * k;
            let batches = items.div_ceil(32);
            let (mut t_img, mut t_text) = (0.0, 0.0);
            let start = Instant::now();
            for b in 0..batches {
                let size = (items - b * 32).min(32) as i64;
                let pixels = Tensor::randn([size, 3, 32, 32], (Kind::Float, Device::Cpu));
                let labels = Tensor::randint(n as i64, [size], (Kind::Int64, Device::Cpu));
                let t = Instant::now();
                let img = tch::no_grad(|| clip.encode_image(&pixels));
                t_img += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let (loss, _) = coop::loss(&clip, &l, &img, &labels);
                let _ = Tensor::run_backward(&[&loss], &[&l.ctx], false, false);
                t_text += t.elapsed().as_secs_f64();
            }
            let epoch = start.elapsed().as_secs_f64();
            println!(
                "{n:>7} {k:>5} {batches:>7} | {epoch:>8.3}s {t_img:>8.3}s {t_text:>8.3}s | {:>8.1}ms",
                1e3 * epoch / batches as f64
            );
        }
    }
}

//! Forward and forward+backward time of the prompt learner's class features, full 77-token
//! prompts against the shared-prefix path, on CLIP's real text tower shape (width 512, 12
//! layers, 8 heads; random weights) with 16 context vectors and ImageNet class names.
//!
//! cargo bench -p subpt-trainer --bench text_fast -- [--classes 10,100,1000]
//!     [--plain-backward-max 100] [--budget 20] [--threads N]
//!
//! `--plain-backward-max`: the largest class count whose full-prompt backward is timed (1000
//! full prompts keep ~40 GB of activations). `--budget`: seconds each measurement may repeat for.
mod common;
use std::time::Instant;
use subpt_trainer::clip::config::TextConfig;
use subpt_trainer::clip::random_init::Spec;
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::methods::prompt_learner::{ClassTokenPosition, PromptConfig, PromptLearner};
use tch::{Kind, Tensor};

struct Args {
    classes: Vec<usize>,
    plain_backward_max: usize,
    budget: f64,
    threads: Option<i32>,
}

fn parse_args() -> Args {
    let mut a = Args {
        classes: vec![10, 100, 1000],
        plain_backward_max: 100,
        budget: 20.0,
        threads: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--classes" => {
                a.classes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--classes: comma-separated counts"))
                    .collect()
            }
            "--plain-backward-max" => a.plain_backward_max = value().parse().expect("a count"),
            "--budget" => a.budget = value().parse().expect("seconds"),
            "--threads" => a.threads = Some(value().parse().expect("a count")),
            // cargo passes `--bench` to benchmark binaries.
            _ => {}
        }
    }
    a
}

/// Median seconds of `f` over repeats that fit in `budget` (at least one run). A first, warm-up
/// run is discarded when it is short enough to afford one.
fn time(budget: f64, mut f: impl FnMut()) -> (f64, usize) {
    let start = Instant::now();
    f();
    let first = start.elapsed().as_secs_f64();
    if 2.0 * first > budget {
        return (first, 1);
    }
    let mut runs = Vec::new();
    let t0 = Instant::now();
    while runs.is_empty() || (t0.elapsed().as_secs_f64() + first < budget && runs.len() < 10) {
        let s = Instant::now();
        f();
        runs.push(s.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], runs.len())
}

fn fmt(t: Option<(f64, usize)>) -> String {
    match t {
        Some((s, n)) => format!("{:>8.3} s (x{n})", s),
        None => format!("{:>14}", "-"),
    }
}

fn main() {
    let args = parse_args();
    if let Some(n) = args.threads {
        tch::set_num_threads(n);
    }
    let spec = Spec {
        embed_dim: 512,
        text: TextConfig {
            width: 512,
            layers: 12,
            heads: 8,
            context_length: 77,
            vocab_size: 49408,
        },
        ..Spec::tiny_vit()
    };
    let clip = common::random_clip(&spec);
    let tok = Tokenizer::new();
    let all = common::imagenet_names();
    println!(
        "text tower 512 x 12 layers x 8 heads, fp32, n_ctx 16, {} libtorch threads, load average {}",
        tch::get_num_threads(),
        common::load_average()
    );
    println!(
        "{:>7} {:>9} | {:>14} {:>14} {:>7} | {:>14} {:>14} {:>7} | {:>7} {:>14} | {:>8}",
        "classes",
        "tail/full",
        "fast fwd",
        "full fwd",
        "speedup",
        "fast fwd+bwd",
        "full fwd+bwd",
        "speedup",
        "buckets",
        "1-bucket f+b",
        "max rel"
    );
    let end = ClassTokenPosition::End;
    for &n in &args.classes {
        // Evenly spread over the list, so that long and short names both occur.
        let names: Vec<String> = (0..n).map(|i| all[i * all.len() / n].clone()).collect();
        tch::manual_seed(1);
        let cfg = PromptConfig {
            n_ctx: 16,
            ..Default::default()
        };
        let l = PromptLearner::new(&clip, &tok, &names, cfg).expect("ImageNet names fit");
        let set = &l.classes;
        assert!(set.shares_prefix(&l.ctx, end));
        let tail = l.classes.ids.argmax(-1, false).max().int64_value(&[]) - 16;
        let fast_fwd = time(args.budget, || {
            let _ = tch::no_grad(|| set.encode(&clip, &l.ctx, end));
        });
        let full_fwd = time(args.budget, || {
            let _ = tch::no_grad(|| set.encode_full(&clip, &l.ctx, end));
        });
        let backward = |f: &dyn Fn() -> Tensor| {
            let loss = f().to_kind(Kind::Float).square().sum(Kind::Float);
            Tensor::run_backward(&[loss], &[&l.ctx], false, false);
        };
        let fast_bwd = time(args.budget, || backward(&|| set.encode(&clip, &l.ctx, end)));
        let one_bwd = time(args.budget, || {
            backward(&|| set.encode_one_bucket(&clip, &l.ctx))
        });
        let full_bwd = (n <= args.plain_backward_max).then(|| {
            time(args.budget, || {
                backward(&|| set.encode_full(&clip, &l.ctx, end))
            })
        });
        let rel = tch::no_grad(|| {
            let a = set.encode(&clip, &l.ctx, end);
            let b = set.encode_full(&clip, &l.ctx, end);
            ((a - &b).abs().max() / b.abs().max()).double_value(&[])
        });
        let speedup = |f: (f64, usize), p: Option<(f64, usize)>| {
            p.map_or("-".into(), |p| format!("{:.1}x", p.0 / f.0))
        };
        println!(
            "{n:>7} {:>9} | {} {} {:>7} | {} {} {:>7} | {:>7} {} | {rel:>8.1e}",
            format!("{}+{}/77", 17, tail),
            fmt(Some(fast_fwd)),
            fmt(Some(full_fwd)),
            speedup(fast_fwd, Some(full_fwd)),
            fmt(Some(fast_bwd)),
            fmt(full_bwd),
            speedup(fast_bwd, full_bwd),
            set.bucket_count(),
            fmt(Some(one_bwd)),
        );
    }
}

//! The shared-prefix text path against the full 77-token prompts: same class features and same
//! context gradient, in fp32 and bf16, for names of very different lengths (up to a prompt of
//! exactly 77 tokens); and the prompt learner keeps the full path where the prefix is not shared.
//!
//! Differences are measured as max|fast - full| / max|full| over the whole tensor.
use std::sync::{Mutex, MutexGuard};
use subpt_trainer::clip::config::{Activation, TextConfig};
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::clip::{Clip, Precision};
use subpt_trainer::methods::prompt_learner::{
    ClassTokenPosition, PromptConfig, PromptLearner, PromptSet,
};
use tch::{Device, Kind, Tensor};

/// fp32: both paths compute the same sums in a different order (different lengths and kernels).
const TOL_FP32: f64 = 1e-5;
/// bf16 keeps 8 mantissa bits: one rounding step of a hidden state is already 2^-8 ~ 4e-3, and
/// the two paths round at different points through 2 blocks.
const TOL_BF16: f64 = 2e-2;

/// Weight generation and the contexts draw from libtorch's global generator: tests running in
/// parallel would interleave their draws (and two "identical" models could differ).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    ((&a - &b).abs().max() / b.abs().max()).double_value(&[])
}

fn weights() -> std::collections::BTreeMap<String, Tensor> {
    // Several heads, so that the per-head split of the prefix keys/values is exercised.
    let spec = Spec {
        text: TextConfig {
            heads: 4,
            ..Spec::tiny_vit().text
        },
        ..Spec::tiny_vit()
    };
    generate(&spec, 21)
}

fn clip(precision: Precision) -> Clip {
    Clip::from_tensors(weights(), Activation::QuickGelu, precision, Device::Cpu).unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Class names whose prompts end at very different positions: one BPE token, several words,
/// punctuation, and (with 4 context tokens) a prompt of exactly 77 tokens.
fn classnames() -> Vec<String> {
    let longest = vec!["cat"; 70].join(" ");
    let mut v = names(&[
        "cat",
        "golden_retriever",
        "t-shirt/top",
        "Annual Crop Land",
        "black-footed ferret in a grassy field near the river bank",
        "X",
    ]);
    v.push(longest);
    v
}

/// Features (fp32) and the gradient of a fixed linear functional of them w.r.t. the context.
fn features_and_grad(ctx: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
    let ctx = ctx.detach().set_requires_grad(true);
    let feats = f(&ctx).to_kind(Kind::Float);
    tch::manual_seed(99);
    let w = Tensor::randn(feats.size(), (Kind::Float, Device::Cpu));
    let loss = (&feats * w).sum(Kind::Float);
    let grads = Tensor::run_backward(&[loss], &[&ctx], false, false);
    (feats.detach(), grads[0].shallow_clone())
}

/// Checks fast against full for one learner; returns the (feature, gradient) differences.
fn compare(clip: &Clip, learner: &PromptLearner, set: Option<&PromptSet>, tol: f64) -> (f64, f64) {
    let set = set.unwrap_or(&learner.classes);
    assert!(set.shares_prefix(&learner.ctx, ClassTokenPosition::End));
    let (fast, g_fast) = features_and_grad(&learner.ctx, |c| {
        set.encode(clip, c, ClassTokenPosition::End)
    });
    let (full, g_full) = features_and_grad(&learner.ctx, |c| {
        clip.text
            .encode_embeddings(&set.assemble(c, ClassTokenPosition::End), &set.ids)
    });
    let (rf, rg) = (rel(&fast, &full), rel(&g_fast, &g_full));
    eprintln!("features {rf:.2e}, context gradient {rg:.2e} (tolerance {tol:.0e})");
    assert!(rf < tol, "features differ by {rf}");
    assert!(rg < tol, "context gradients differ by {rg}");
    assert!(g_full.abs().max().double_value(&[]) > 0.0);
    (rf, rg)
}

#[test]
fn prompt_of_exactly_77_tokens_is_in_the_test_set() {
    let _serial = serial();
    let clip = clip(Precision::Fp32);
    let tok = Tokenizer::new();
    tch::manual_seed(0);
    let l = PromptLearner::new(
        &clip,
        &tok,
        &classnames(),
        PromptConfig {
            n_ctx: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let eot = l.classes.ids.argmax(-1, false);
    assert_eq!(eot.int64_value(&[6]), 76);
    assert_eq!(
        eot.int64_value(&[0]),
        1 + 4 + 2,
        "cat . EOT after the context"
    );
}

#[test]
fn fast_path_matches_full_prompts_fp32() {
    let _serial = serial();
    let clip = clip(Precision::Fp32);
    let tok = Tokenizer::new();
    for (n_ctx, init) in [(4, None), (16, None), (4, Some("a photo of a"))] {
        tch::manual_seed(1);
        let mut classes = classnames();
        if n_ctx == 16 {
            classes.pop(); // 16 context tokens leave no room for the 70-word name.
        }
        let cfg = PromptConfig {
            n_ctx,
            ctx_init: init.map(String::from),
            ..Default::default()
        };
        let mut l = PromptLearner::new(&clip, &tok, &classes, cfg).unwrap();
        // A context of embedding scale, so that it weighs on the features as a trained one does.
        l.set_context(&(Tensor::randn(l.ctx.size(), (Kind::Float, Device::Cpu)) * 0.3))
            .unwrap();
        compare(&clip, &l, None, TOL_FP32);
        // The learner's own entry point takes the same path.
        let r = rel(
            &l.class_features(&clip),
            &l.classes
                .encode_full(&clip, &l.ctx, ClassTokenPosition::End),
        );
        assert!(r < TOL_FP32, "class_features differs by {r}");
        // A single class, and NFL's second name list read with the same context.
        let one =
            PromptSet::new(&clip, &tok, &names(&["ballpoint pen"]), &l.ctx_words, n_ctx).unwrap();
        compare(&clip, &l, Some(&one), TOL_FP32);
        let nfl = PromptSet::new(
            &clip,
            &tok,
            &names(&["tench", "great white shark", "a", "Welsh Springer Spaniel"]),
            &l.ctx_words,
            l.config.effective_n_ctx(),
        )
        .unwrap();
        compare(&clip, &l, Some(&nfl), TOL_FP32);
        let r = rel(
            &l.extra_features(&clip, &nfl),
            &nfl.encode_full(&clip, &l.ctx, ClassTokenPosition::End),
        );
        assert!(r < TOL_FP32, "extra_features differs by {r}");
    }
}

/// Many classes of mixed name lengths: the classes run in several tail-length buckets, each
/// padded to its own longest tail, and still give the full prompts' features and gradient in
/// the classes' own order.
#[test]
fn tail_length_buckets_match_full_prompts() {
    let _serial = serial();
    let clip = clip(Precision::Fp32);
    let tok = Tokenizer::new();
    let words = [
        "cat",
        "golden retriever",
        "t-shirt/top",
        "annual crop land near a river",
    ];
    // 20 of each length, interleaved, then a few odd ones that join a longer bucket.
    let mut classes: Vec<String> = (0..80).map(|i| format!("{} {i}", words[i % 4])).collect();
    classes.extend(names(&[
        "X",
        "black-footed ferret in a grassy field near the river bank",
    ]));
    tch::manual_seed(4);
    let cfg = PromptConfig {
        n_ctx: 4,
        ..Default::default()
    };
    let mut l = PromptLearner::new(&clip, &tok, &classes, cfg).unwrap();
    l.set_context(&(Tensor::randn(l.ctx.size(), (Kind::Float, Device::Cpu)) * 0.3))
        .unwrap();
    assert!(
        l.classes.bucket_count() >= 3,
        "{} buckets",
        l.classes.bucket_count()
    );
    compare(&clip, &l, None, TOL_FP32);
}

#[test]
fn fast_path_matches_full_prompts_bf16() {
    let _serial = serial();
    let clip = clip(Precision::Bf16);
    let tok = Tokenizer::new();
    tch::manual_seed(2);
    let cfg = PromptConfig {
        n_ctx: 4,
        ..Default::default()
    };
    let mut l = PromptLearner::new(&clip, &tok, &classnames(), cfg).unwrap();
    l.set_context(&(Tensor::randn(l.ctx.size(), (Kind::Float, Device::Cpu)) * 0.3))
        .unwrap();
    compare(&clip, &l, None, TOL_BF16);
    // The fast path's bf16 error against fp32 is of the same size as the full path's.
    let fp32 = self::clip(Precision::Fp32);
    let exact = l
        .classes
        .encode_full(&fp32, &l.ctx, ClassTokenPosition::End);
    let fast = l.class_features(&clip);
    let full = l
        .classes
        .encode_full(&clip, &l.ctx, ClassTokenPosition::End);
    let (ef, eb) = (rel(&fast, &exact), rel(&full, &exact));
    eprintln!("bf16 vs fp32: fast {ef:.2e}, full {eb:.2e}");
    assert!(ef < 2.0 * eb + 1e-3, "fast bf16 error {ef} vs full {eb}");
}

#[test]
fn other_layouts_keep_the_full_path() {
    let _serial = serial();
    let clip = clip(Precision::Fp32);
    let tok = Tokenizer::new();
    let classes = names(&["cat", "golden_retriever", "Annual Crop Land"]);
    for (position, csc) in [
        (ClassTokenPosition::End, true),
        (ClassTokenPosition::Middle, false),
        (ClassTokenPosition::Front, false),
        (ClassTokenPosition::Middle, true),
    ] {
        tch::manual_seed(3);
        let cfg = PromptConfig {
            n_ctx: 4,
            class_specific: csc,
            position,
            ..Default::default()
        };
        let l = PromptLearner::new(&clip, &tok, &classes, cfg).unwrap();
        assert!(!l.classes.shares_prefix(&l.ctx, position));
        let got = l.class_features(&clip);
        let want = clip
            .text
            .encode_embeddings(&l.classes.assemble(&l.ctx, position), &l.classes.ids);
        assert_eq!(rel(&got, &want), 0.0, "{position:?}, csc {csc}");
    }
}

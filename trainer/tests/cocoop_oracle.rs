//! CoCoOp against OpenAI's CLIP code + torch.nn + PyTorch autograd and torch.optim.SGD: the
//! meta-net's seeded initialisation, then loss, logits, the gradient of the context and of
//! every meta-net tensor and the SGD momentum buffers over two steps, and the final parameters.
//!
//! The image features are drawn directly rather than encoded from random pixels: the tiny
//! random CLIP maps every image to nearly one direction (cosines ~0.97), which makes the
//! meta-net's first-layer gradient a near-cancelling sum whose fp32 noise reaches ~3e-5 in
//! PyTorch itself (measured against a float64 run). CoCoOp's input is frozen features anyway.
mod common;
use std::collections::HashMap;
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::engine::optim::{Sgd, SgdConfig};
use subpt_trainer::methods::cocoop::{CoCoOp, CoCoOpConfig};
use tch::{Device, Kind, Tensor};

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    ((a - b).abs().max() / b.abs().max()).double_value(&[])
}

struct Case {
    name: &'static str,
    config: CoCoOpConfig,
    seed: i64,
    labels: &'static [i64],
    /// Text-tower budget: 4 prompts (one image per pass, as the reference loops) or the default.
    prompts_per_pass: Option<usize>,
    steps: usize,
    lr: f64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "words",
            config: subpt_trainer::engine::presets::cocoop_config(),
            seed: 8,
            labels: &[2, 0, 3],
            prompts_per_pass: None,
            steps: 2,
            lr: 0.05,
        },
        Case {
            name: "random",
            config: CoCoOpConfig {
                n_ctx: 4,
                ctx_init: None,
            },
            seed: 7,
            labels: &[1, 3],
            prompts_per_pass: Some(4),
            steps: 2,
            lr: 0.002,
        },
    ]
}

#[test]
fn cocoop_init_and_steps_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = common::tiny_clip(13, &d.join("weights.safetensors"));
    let tok = Tokenizer::new();
    let classnames: Vec<String> = ["golden_retriever", "Annual Crop Land", "t-shirt/top", "cat"]
        .map(String::from)
        .to_vec();

    let cases = cases();
    let mut models = Vec::new();
    let mut inputs = Vec::new();
    for c in &cases {
        tch::manual_seed(c.seed);
        let mut m = CoCoOp::new(&clip, &tok, &classnames, &c.config).unwrap();
        if let Some(p) = c.prompts_per_pass {
            m.prompts_per_pass = p;
        }
        let b = c.labels.len() as i64;
        // Not unit length, so the normalisation before the meta-net matters.
        let x = Tensor::randn([b, 64], (Kind::Float, Device::Cpu)) * 3.0;
        inputs.push((format!("{}.features", c.name), x));
        inputs.push((format!("{}.labels", c.name), Tensor::from_slice(c.labels)));
        for (k, v) in m.named_parameters() {
            inputs.push((format!("{}.{k}", c.name), v.detach().copy()));
        }
        models.push(m);
    }
    Tensor::write_safetensors(&inputs, d.join("inputs.safetensors")).unwrap();
    let case = serde_json::json!({
        "classnames": classnames,
        "inits": cases.iter().map(|c| serde_json::json!({
            "name": c.name,
            "seed": c.seed,
            "n_ctx": c.config.n_ctx,
            "words": c.config.ctx_init,
        })).collect::<Vec<_>>(),
        "cases": cases.iter().map(|c| serde_json::json!({
            "name": c.name,
            "words": c.config.ctx_init,
            "steps": c.steps,
            "lr": c.lr,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(d.join("case.json"), case.to_string()).unwrap();
    common::run("cocoop_step_oracle.py", &[d.to_str().unwrap()]);
    let want = common::load(&d.join("expected.safetensors"));
    let inputs: HashMap<String, Tensor> = inputs.into_iter().collect();

    for (c, m) in cases.iter().zip(&mut models) {
        // The reference takes the context from the words' embeddings or draws it, then draws
        // nn.Linear's default init from the same CPU generator: the meta-net must come out
        // identical bit for bit (a random context is `randn * 0.02` here, `normal_(std=0.02)`
        // there, equal up to rounding).
        for (k, _) in m.named_parameters() {
            let ours = &inputs[&format!("{}.{k}", c.name)];
            let theirs = &want[&format!("init.{}.{k}", c.name)];
            if k == "ctx" && c.config.ctx_init.is_none() {
                let e = rel(ours, theirs);
                assert!(e < 1e-6, "{}: initial ctx relative error {e}", c.name);
            } else {
                assert!(ours.equal(theirs), "{}: initial {k} differs", c.name);
            }
        }

        let image_features = &inputs[&format!("{}.features", c.name)];
        let labels = &inputs[&format!("{}.labels", c.name)];
        let mut sgds: Vec<Sgd> = (0..5).map(|_| Sgd::new(SgdConfig::default())).collect();
        for step in 0..c.steps {
            let (loss, logits) = m.loss(&clip, image_features, labels);
            let grads = Tensor::run_backward(&[&loss], &m.parameters(), false, false);
            let at = |what: &str| &want[&format!("{}.{step}.{what}", c.name)];
            let e = rel(&loss.reshape([1]), at("loss"));
            assert!(e < 1e-5, "{} step {step}: loss relative error {e}", c.name);
            let e = rel(&logits, at("logits"));
            assert!(
                e < 1e-5,
                "{} step {step}: logits relative error {e}",
                c.name
            );
            for ((k, _), g) in m.named_parameters().iter().zip(&grads) {
                let e = rel(g, at(&format!("grad.{k}")));
                assert!(
                    e < 1e-5,
                    "{} step {step}: grad of {k} relative error {e}",
                    c.name
                );
            }
            for ((p, g), s) in m.parameters_mut().into_iter().zip(&grads).zip(&mut sgds) {
                s.step(p, g, c.lr);
            }
            // The momentum buffers are the updates themselves, free of the cancellation that
            // comparing parameter differences would add.
            for ((k, _), s) in m.named_parameters().iter().zip(&sgds) {
                let buf = s.momentum_buffer().expect("a step has run");
                let e = rel(buf, at(&format!("buf.{k}")));
                assert!(
                    e < 1e-5,
                    "{} step {step}: momentum of {k} relative error {e}",
                    c.name
                );
            }
        }
        for (k, v) in m.named_parameters() {
            let e = rel(&v, &want[&format!("{}.final.{k}", c.name)]);
            assert!(e < 1e-6, "{}: final {k} relative error {e}", c.name);
        }
    }
}

//! One CoOp step and one NFL step against OpenAI's CLIP code + PyTorch autograd: same loss and
//! same context gradient, for each class-token position and for class-specific contexts.
mod common;
use subpt_trainer::clip::normalize;
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::methods::coop;
use subpt_trainer::methods::nfl::Nfl;
use subpt_trainer::methods::prompt_learner::{
    ClassTokenPosition, PromptConfig, PromptLearner, PromptSet,
};
use tch::{Device, Kind, Tensor};

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    ((a - b).abs().max() / b.abs().max()).double_value(&[])
}

struct Variant {
    name: &'static str,
    position: ClassTokenPosition,
    csc: bool,
    nfl: bool,
}

#[test]
fn coop_and_nfl_steps_match_pytorch_autograd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = common::tiny_clip(11, &d.join("weights.safetensors"));
    let tok = Tokenizer::new();
    let classnames: Vec<String> = ["golden_retriever", "Annual Crop Land", "t-shirt/top", "cat"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let nfl_names: Vec<String> = ["tench", "great white shark", "ballpoint pen"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let variants = [
        Variant {
            name: "end",
            position: ClassTokenPosition::End,
            csc: false,
            nfl: false,
        },
        Variant {
            name: "middle",
            position: ClassTokenPosition::Middle,
            csc: true,
            nfl: false,
        },
        Variant {
            name: "front",
            position: ClassTokenPosition::Front,
            csc: true,
            nfl: false,
        },
        Variant {
            name: "nfl",
            position: ClassTokenPosition::End,
            csc: false,
            nfl: true,
        },
    ];
    tch::manual_seed(3);
    let pixels = Tensor::randn([6, 3, 32, 32], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 1, 0]);
    let targets = normalize(&Tensor::randn([3, 64], (Kind::Float, Device::Cpu)));
    let mut inputs = vec![
        ("pixels".to_string(), pixels.shallow_clone()),
        ("labels".to_string(), labels.shallow_clone()),
        ("nfl_targets".to_string(), targets.shallow_clone()),
    ];
    let mut learners = Vec::new();
    for v in &variants {
        let cfg = PromptConfig {
            n_ctx: 4,
            class_specific: v.csc,
            position: v.position,
            ..PromptConfig::default()
        };
        let l = PromptLearner::new(&clip, &tok, &classnames, cfg).unwrap();
        inputs.push((format!("{}.ctx", v.name), l.ctx.detach().copy()));
        learners.push(l);
    }
    Tensor::write_safetensors(&inputs, d.join("inputs.safetensors")).unwrap();
    let case = serde_json::json!({
        "classnames": classnames,
        "nfl_names": nfl_names,
        "lambda": 0.7,
        "variants": variants.iter().map(|v| serde_json::json!({
            "name": v.name,
            "position": match v.position {
                ClassTokenPosition::End => "end",
                ClassTokenPosition::Middle => "middle",
                ClassTokenPosition::Front => "front",
            },
            "nfl": v.nfl,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(d.join("case.json"), case.to_string()).unwrap();
    common::run("coop_step_oracle.py", &[d.to_str().unwrap()]);
    let want = common::load(&d.join("expected.safetensors"));

    let image_features = tch::no_grad(|| clip.encode_image(&pixels));
    for (v, l) in variants.iter().zip(&learners) {
        let (mut loss, logits) = coop::loss(&clip, l, &image_features, &labels);
        if v.nfl {
            let nfl = Nfl {
                prompts: PromptSet::new(&clip, &tok, &nfl_names, &l.ctx_words, 4).unwrap(),
                targets: targets.shallow_clone(),
                lambda: 0.7,
            };
            loss += nfl.loss(&clip, l);
        }
        let g = Tensor::run_backward(&[&loss], &[&l.ctx], false, false).remove(0);
        let lw = &want[&format!("{}.loss", v.name)];
        let e_loss = rel(&loss.reshape([1]), lw);
        let e_logits = rel(&logits, &want[&format!("{}.logits", v.name)]);
        let e_grad = rel(&g, &want[&format!("{}.grad", v.name)]);
        assert!(e_loss < 1e-5, "{}: loss relative error {e_loss}", v.name);
        assert!(
            e_logits < 1e-5,
            "{}: logits relative error {e_logits}",
            v.name
        );
        assert!(
            e_grad < 1e-5,
            "{}: gradient relative error {e_grad}",
            v.name
        );
    }
}

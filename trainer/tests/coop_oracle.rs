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

/// KgCoOp's step (its "a photo of a" context, CE + W·(1 − mean cos) to its template's
/// zero-shot features) and ProGrad's (its template's words in the last of 16 zero slots, the
/// KL term against the zero-shot teacher, the rule) against an independent PyTorch
/// implementation of each official formulation: same initial contexts, losses and update
/// gradients, on a batch where ProGrad's two gradients agree and one where they conflict.
#[test]
fn kgcoop_and_prograd_steps_match_their_official_formulations() {
    use subpt_trainer::engine::spec::{KgSpec, ProGradSpec};
    use subpt_trainer::methods::coop::CoopLearner;
    use subpt_trainer::methods::kgcoop::KgTerm;
    use subpt_trainer::methods::learner::{GradientRule, Learner, PromptTerm, TermGrads};
    use subpt_trainer::methods::prograd::{KlTerm, ProGradRule};
    use subpt_trainer::methods::zeroshot::template_features;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = common::tiny_clip(13, &d.join("weights.safetensors"));
    let tok = Tokenizer::new();
    let classnames: Vec<String> = [
        "golden_retriever",
        "Annual Crop Land",
        "t-shirt/top",
        "cat",
        "sea lion",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kg = KgSpec {
        weight: 8.0,
        template: "a photo of a {}, a type of pet.".into(),
    };
    // A comma: 8 words, 9 tokens, so the last word falls after the 16 slots.
    let pg = ProGradSpec {
        lambda: 0.8,
        temperature: 1.0,
        template: "a type of pet, a photo of a {}.".into(),
    };
    let pixels = Tensor::randn([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let img = tch::no_grad(|| clip.encode_image(&pixels));
    let teacher = template_features(&clip, &tok, &classnames, &pg.template).unwrap();
    let zs_logits = coop::logits(&clip, &img, &teacher);
    // ProGrad's two branches: a labelling whose cross-entropy gradient agrees with the KL
    // term's and one where they conflict, found among shifts of the teacher's predictions
    // (shift 0 is what it predicts) and a few fixed labellings. The oracle's own cosine must
    // then take the same branch.
    let pg_learner = |clip: &subpt_trainer::clip::Clip| {
        let cfg = PromptConfig {
            n_ctx: 16,
            ctx_init: Some("a type of pet, a photo of a".into()),
            init_in_last_slots: true,
            ..PromptConfig::default()
        };
        CoopLearner {
            prompts: PromptLearner::new(clip, &tok, &classnames, cfg).unwrap(),
            terms: vec![Box::new(KlTerm {
                teacher: teacher.shallow_clone(),
                temperature: pg.temperature,
            })],
            nfl: None,
        }
    };
    let cosine = |labels: &Tensor| {
        let l = pg_learner(&clip);
        let step = l.loss(&clip, &img, labels);
        let g: Vec<Tensor> = step
            .terms
            .iter()
            .enumerate()
            .map(|(i, (_, t))| {
                Tensor::run_backward(&[t], &[&l.prompts.ctx], i == 0, false).remove(0)
            })
            .collect();
        let (a, b) = (g[0].flatten(0, -1), g[1].flatten(0, -1));
        (a.dot(&b) / (a.norm() * b.norm())).double_value(&[])
    };
    let n = classnames.len() as i64;
    let predicted = zs_logits.argmax(-1, false);
    let mut candidates: Vec<Tensor> = (0..n).map(|k| (&predicted + k).remainder(n)).collect();
    candidates.push(zs_logits.argmin(-1, false));
    for seed in 0..16i64 {
        let v: Vec<i64> = (0..8).map(|i| (seed * 7 + i * (seed + 3)) % n).collect();
        candidates.push(Tensor::from_slice(&v));
    }
    let cosines: Vec<f64> = candidates.iter().map(&cosine).collect();
    let pick = |conflicting: bool| {
        let i = cosines
            .iter()
            .position(|&c| (c < 0.0) == conflicting && c.abs() > 1e-3)
            .unwrap_or_else(|| {
                panic!("no labelling with conflicting = {conflicting}: {cosines:?}")
            });
        candidates[i].shallow_clone()
    };
    let (agree, conflict) = (pick(false), pick(true));
    let labels = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 1, 0, 2]);
    Tensor::write_safetensors(
        &[
            ("pixels", &pixels),
            ("labels", &labels),
            ("agree.labels", &agree),
            ("conflict.labels", &conflict),
        ],
        d.join("inputs.safetensors"),
    )
    .unwrap();
    let case = serde_json::json!({
        "classnames": classnames,
        "kg_template": kg.template,
        "kg_weight": kg.weight,
        "pg_template": pg.template,
        "pg_n_ctx": 16,
        "pg_lambda": pg.lambda,
        "pg_temperature": pg.temperature,
        "pg_cases": ["agree", "conflict"],
    });
    std::fs::write(d.join("case.json"), case.to_string()).unwrap();
    common::run("remedies_step_oracle.py", &[d.to_str().unwrap()]);
    let want = common::load(&d.join("expected.safetensors"));
    let close = |what: &str, ours: &Tensor, key: &str| {
        let e = rel(ours, &want[key]);
        assert!(e < 1e-5, "{what}: relative error {e}");
    };

    // KgCoOp: the learner the method trains, one step.
    let prompts = PromptLearner::new(
        &clip,
        &tok,
        &classnames,
        PromptConfig {
            ctx_init: Some("a photo of a".into()),
            ..PromptConfig::default()
        },
    )
    .unwrap();
    close("KgCoOp's initial context", &prompts.ctx, "kg.ctx0");
    let term = KgTerm {
        targets: template_features(&clip, &tok, &classnames, &kg.template).unwrap(),
        weight: kg.weight,
    };
    assert_eq!(term.name(), "kg");
    let learner = CoopLearner {
        prompts,
        terms: vec![Box::new(term)],
        nfl: None,
    };
    let step = learner.loss(&clip, &img, &labels);
    let names: Vec<&str> = step.terms.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["ce", "kg"]);
    let loss = step
        .terms
        .iter()
        .map(|(_, t)| t.shallow_clone())
        .reduce(|a, b| a + b)
        .unwrap();
    let g = Tensor::run_backward(&[&loss], &[&learner.prompts.ctx], false, false).remove(0);
    close("KgCoOp's loss", &loss.reshape([1]), "kg.loss");
    close("KgCoOp's logits", &step.logits, "kg.logits");
    close("KgCoOp's gradient", &g, "kg.grad");

    // ProGrad: its context, both terms, then the rule on their gradients.
    for (tag, labels) in [("agree", &agree), ("conflict", &conflict)] {
        let learner = pg_learner(&clip);
        close(
            "ProGrad's initial context",
            &learner.prompts.ctx,
            &format!("{tag}.ctx0"),
        );
        let step = learner.loss(&clip, &img, labels);
        let ctx = &learner.prompts.ctx;
        let mut grads: TermGrads = Vec::new();
        for (i, (name, t)) in step.terms.iter().enumerate() {
            close(
                &format!("{tag}: {name}"),
                &t.reshape([1]),
                &format!("{tag}.{name}"),
            );
            grads.push((name, Tensor::run_backward(&[t], &[ctx], i == 0, false)));
        }
        let rule = ProGradRule::of(&pg);
        assert_eq!(rule.reads_apart(), ["ce", "kl"]);
        rule.apply(&mut grads);
        assert_eq!(grads.len(), 1);
        close(
            &format!("{tag}: ProGrad's gradient"),
            &grads[0].1[0],
            &format!("{tag}.grad"),
        );
        // Each case reaches the branch it is named for.
        let cos = want[&format!("{tag}.cos")].double_value(&[0]);
        assert_eq!(
            cos < 0.0,
            tag == "conflict",
            "{tag}: cos(g_ce, g_kl) = {cos}"
        );
    }
}

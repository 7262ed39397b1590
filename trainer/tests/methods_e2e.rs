//! End-to-end cells on fixture data with a tiny random-init CLIP: every method finishes and
//! writes a complete result, SubPT keeps its updates inside its subspace, and CoOp learns a
//! learnable fixture.
use std::path::Path;
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::comm::Single;
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::run::run;
use subpt_trainer::engine::spec::{Method, NflSpec, RunSpec, SubptSpec};
use tch::{Device, Tensor};

fn setup(dir: &Path, opts: &FixtureOptions) -> std::path::PathBuf {
    write_fixture(DatasetName::EuroSat, &dir.join("data"), opts).unwrap();
    let w = dir.join("tiny.safetensors");
    let t = generate(&Spec::tiny_vit(), 5);
    let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, &w).unwrap();
    w
}

/// `theta0` and `ctx_<e>` of a run's trajectory file.
fn trajectory(out: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(out.join("trajectory.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn spec(dir: &Path, weights: &Path, method: Method, shots: usize, epochs: usize) -> RunSpec {
    let mut s = preset(
        Protocol::FewShot,
        DatasetName::EuroSat,
        dir.join("data"),
        method,
        shots,
        1,
        weights.to_path_buf(),
    );
    s.epochs = epochs;
    s.cache_dir = dir.join("cache");
    // Fewer slots than the paper's 16, but room for ProGrad's initial words (EuroSAT's five).
    s.prompt.n_ctx = if s.prompt.init_in_last_slots { 6 } else { 4 };
    s
}

#[test]
fn every_method_runs_base_to_novel_and_writes_complete_results() {
    let dir = tempfile::tempdir().unwrap();
    let w = setup(dir.path(), &FixtureOptions::default());
    for method in Method::ALL {
        let mut s = spec(dir.path(), &w, method, 2, 3);
        s.subsample = SubsampleClasses::Base;
        s.eval_subsets = vec![SubsampleClasses::Base, SubsampleClasses::New];
        s.eval_every = 1;
        if let Some(sub) = s.subpt.as_mut() {
            *sub = SubptSpec {
                rank: 2,
                early_epochs: 2,
                ..subpt_trainer::engine::presets::subpt_spec(Protocol::FewShot, 2)
            };
        }
        if method.uses_nfl() {
            s.nfl = Some(NflSpec {
                names: "novel".into(),
                lambda: 1.0,
            });
        }
        let out = dir.path().join(method.to_string());
        let r = run(&s, &out, Device::Cpu, &Single).unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(r.spec_hash, s.hash());
        for (k, classes) in [(SubsampleClasses::Base, 3), (SubsampleClasses::New, 2)] {
            let a = r.accuracy[&k];
            assert!((0.0..=100.0).contains(&a), "{method} {k}: {a}");
            assert_eq!(r.per_class_accuracy[&k].len(), classes);
        }
        let hm = r.hm.expect("base and new give a harmonic mean");
        assert!(
            hm <= r.accuracy[&SubsampleClasses::Base].max(r.accuracy[&SubsampleClasses::New])
                + 1e-9
        );
        if method == Method::Zsclip {
            assert!(r.curves.is_empty());
            continue;
        }
        assert_eq!(r.curves.len(), 3, "{method}: one curve point per epoch");
        assert!(r
            .curves
            .iter()
            .all(|c| c.test.contains_key(&SubsampleClasses::New)));
        assert_eq!(r.curves[0].lr, 1e-5, "{method}: warm-up epoch");
        let traj = Tensor::read_safetensors(out.join("trajectory.safetensors")).unwrap();
        assert_eq!(traj.len(), 4, "{method}: theta0 + one context per epoch");
        assert_eq!(r.subspace.is_some(), method.uses_subspace(), "{method}");
        if let Some(sub) = &r.subspace {
            assert_eq!((sub.rank, sub.points), (2, 2));
        }
    }
}

#[test]
fn subpt_moves_the_context_only_inside_its_subspace_plus_weight_decay() {
    let dir = tempfile::tempdir().unwrap();
    let w = setup(dir.path(), &FixtureOptions::default());
    let mut s = spec(dir.path(), &w, Method::CoopSub, 4, 4);
    s.sgd.weight_decay = 0.0;
    s.subpt = Some(SubptSpec {
        rank: 2,
        early_epochs: 3,
        ..subpt_trainer::engine::presets::subpt_spec(Protocol::FewShot, 4)
    });
    let out = dir.path().join("sub");
    run(&s, &out, Device::Cpu, &Single).unwrap();
    let t: std::collections::HashMap<String, Tensor> = trajectory(&out);
    // Rebuild the basis from the early stage, which reruns the same seed: CoOp's first 3 epochs.
    let mut coop = spec(dir.path(), &w, Method::Coop, 4, 4);
    coop.sgd.weight_decay = 0.0;
    let early_dir = dir.path().join("coop");
    run(&coop, &early_dir, Device::Cpu, &Single).unwrap();
    let e: std::collections::HashMap<String, Tensor> = trajectory(&early_dir);
    let pts: Vec<Tensor> = (1..=3)
        .map(|i| e[&format!("ctx_{i}")].shallow_clone())
        .collect();
    let sub = subpt_trainer::methods::subspace::Subspace::fit(&pts, 2).unwrap();
    let u = sub.components.to_kind(tch::Kind::Double);
    let moved = (&t["ctx_4"] - &t["theta0"])
        .reshape([-1, 1])
        .to_kind(tch::Kind::Double);
    let resid = &moved - u.tr().matmul(&u.matmul(&moved));
    let ratio = resid.norm().double_value(&[]) / moved.norm().double_value(&[]);
    let early_moved = (&e["ctx_3"] - &e["theta0"]).norm().double_value(&[]);
    assert!(
        moved.norm().double_value(&[]) > 0.0,
        "SubPT did not move (CoOp moved {early_moved}); {:?}",
        t.keys().collect::<Vec<_>>()
    );
    assert!(ratio < 1e-4, "context left span(U): residual ratio {ratio}");
}

/// Rewrites every image of the fixture with a colour of its class (plus per-image noise), so
/// that even a random-init image tower separates the classes.
fn recolour(splits: &subpt_trainer::data::DatasetSplits) {
    for item in splits.train.iter().chain(&splits.val).chain(&splits.test) {
        let c = item.label as u32;
        let base = [
            (c * 97 + 30) % 256,
            (c * 57 + 200) % 256,
            (c * 151 + 90) % 256,
        ];
        let img = image::RgbImage::from_fn(48, 48, |x, y| {
            let n = (x * 31 + y * 17 + item.relpath.len() as u32 * 13) % 21;
            image::Rgb(base.map(|b| (b + n).min(255) as u8))
        });
        img.save(&item.impath).unwrap();
    }
}

#[test]
fn coop_learns_a_learnable_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FixtureOptions {
        classes: 4,
        train: vec![8; 4],
        val: vec![2; 4],
        test: vec![6; 4],
        width: 48,
        height: 48,
    };
    let splits = write_fixture(DatasetName::EuroSat, &dir.path().join("data"), &opts).unwrap();
    recolour(&splits);
    let w = dir.path().join("tiny.safetensors");
    let t = generate(&Spec::tiny_vit(), 5);
    let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, &w).unwrap();
    let mut s = spec(dir.path(), &w, Method::Coop, 8, 40);
    s.lr = 0.05;
    s.prompt.class_specific = true;
    let r = run(&s, &dir.path().join("coop"), Device::Cpu, &Single).unwrap();
    let acc = r.accuracy[&SubsampleClasses::All];
    eprintln!(
        "{:?} -> {acc}",
        r.curves
            .iter()
            .map(|c| c.train_accuracy)
            .collect::<Vec<_>>()
    );
    assert!(
        acc >= 60.0,
        "test accuracy {acc}% on 4 classes (chance 25%)"
    );
}

#[test]
fn broken_weights_or_a_diverging_context_never_become_a_result() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(
        DatasetName::EuroSat,
        &dir.path().join("data"),
        &FixtureOptions::default(),
    )
    .unwrap();
    // NaN weights are refused at load, naming the tensor, whatever the method.
    let w = dir.path().join("nan.safetensors");
    let mut t = generate(&Spec::tiny_vit(), 5);
    t.insert(
        "ln_final.weight".into(),
        Tensor::full([64], f64::NAN, tch::kind::FLOAT_CPU),
    );
    let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, &w).unwrap();
    for method in [Method::Zsclip, Method::Coop] {
        let s = spec(dir.path(), &w, method, 2, 2);
        let out = dir.path().join(format!("nan-{method}"));
        let msg = run(&s, &out, Device::Cpu, &Single)
            .expect_err("must fail")
            .to_string();
        assert!(
            msg.contains("nan.safetensors") && msg.contains("`ln_final.weight`"),
            "{msg}"
        );
        assert!(!out.join("result.json").exists());
    }
    // A learning rate of 1e30 drives the context past what the towers can represent: the
    // cell fails (loss, gradient, context or logits not finite) instead of scoring 1/n.
    let good = setup(dir.path(), &FixtureOptions::default());
    let mut s = spec(dir.path(), &good, Method::Coop, 2, 2);
    s.lr = 1e30;
    s.warmup_epochs = 0;
    s.eval_every = 1;
    let out = dir.path().join("diverged");
    let msg = run(&s, &out, Device::Cpu, &Single)
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("not finite") || msg.contains("NaN or infinite"),
        "{msg}"
    );
    assert!(!out.join("context.safetensors").exists());
    assert!(!out.join("result.json").exists());
}

#[test]
fn reduced_precision_towers_train_an_fp32_context() {
    let dir = tempfile::tempdir().unwrap();
    let w = setup(dir.path(), &FixtureOptions::default());
    for p in [
        subpt_trainer::clip::Precision::Bf16,
        subpt_trainer::clip::Precision::Fp16,
    ] {
        let mut s = spec(dir.path(), &w, Method::CoopSubNfl, 2, 3);
        s.precision = p;
        s.subpt = Some(SubptSpec {
            rank: 1,
            early_epochs: 2,
            ..subpt_trainer::engine::presets::subpt_spec(Protocol::FewShot, 2)
        });
        let out = dir.path().join(p.to_string());
        run(&s, &out, Device::Cpu, &Single).unwrap();
        let t: std::collections::HashMap<String, Tensor> = trajectory(&out);
        assert_eq!(t["ctx_3"].kind(), tch::Kind::Float, "{p}");
        let moved = (&t["ctx_3"] - &t["theta0"]).abs().max().double_value(&[]);
        assert!(moved > 0.0 && moved.is_finite(), "{p}: {moved}");
    }
}

#[test]
fn a_trained_context_is_evaluated_on_a_domain_shift_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    write_fixture(DatasetName::ImageNet, &root, &FixtureOptions::default()).unwrap();
    let sketch = write_fixture(
        DatasetName::ImageNetSketch,
        &root,
        &FixtureOptions::default(),
    )
    .unwrap();
    let w = dir.path().join("tiny.safetensors");
    let t = generate(&Spec::tiny_vit(), 5);
    let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, &w).unwrap();
    for method in [Method::Coop, Method::Cocoop] {
        let mut src = preset(
            Protocol::FewShot,
            DatasetName::ImageNet,
            root.clone(),
            method,
            2,
            1,
            w.clone(),
        );
        src.epochs = 2;
        src.prompt.n_ctx = 4;
        src.cache_dir = dir.path().join("cache");
        let src_out = dir.path().join(format!("imagenet-{method}"));
        let trained = run(&src, &src_out, Device::Cpu, &Single).unwrap();
        // Evaluated on its own test set, the saved model (CoCoOp: context and meta-network)
        // scores exactly what the training cell measured.
        let mut again = src.clone();
        again.evaluate_context = Some(src_out.join("context.safetensors"));
        let r = run(
            &again,
            &dir.path().join(format!("again-{method}")),
            Device::Cpu,
            &Single,
        )
        .unwrap();
        assert_eq!(r.accuracy, trained.accuracy, "{method}");
        let mut dg = again.clone();
        dg.dataset = DatasetName::ImageNetSketch;
        let out = dir.path().join(format!("sketch-{method}"));
        let r = run(&dg, &out, Device::Cpu, &Single).unwrap();
        assert_eq!(r.test_size[&SubsampleClasses::All], sketch.test.len());
        assert!((0.0..=100.0).contains(&r.accuracy[&SubsampleClasses::All]));
        assert!(r.curves.is_empty(), "evaluation only: no training epochs");
        assert!(!out.join("trajectory.safetensors").exists());
        // A missing source context is a clear error naming the file.
        dg.evaluate_context = Some(dir.path().join("absent/context.safetensors"));
        let err = run(&dg, &out, Device::Cpu, &Single).expect_err("missing context");
        assert!(
            err.to_string().contains("absent/context.safetensors"),
            "{err}"
        );
    }
}

#[test]
fn classes_with_fewer_images_than_shots_are_recorded_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FixtureOptions::default();
    let w = setup(dir.path(), &opts);
    let s = spec(dir.path(), &w, Method::Coop, 4, 1);
    let r = run(&s, &dir.path().join("out"), Device::Cpu, &Single).unwrap();
    let want: Vec<usize> = opts.train.iter().map(|&n| n.min(4)).collect();
    assert_eq!(r.train_per_class, want);
    assert!(want.iter().any(|&n| n < 4), "the fixture has short classes");
    assert_eq!(r.train_size, want.iter().sum::<usize>());
}

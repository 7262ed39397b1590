//! Loading behaviour that needs no Python peer: config inference round trips and the error
//! messages users see for broken weights files.
use std::collections::BTreeMap;
use subpt_trainer::clip::config::Activation;
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::clip::{weights, Clip, ClipError, Precision};
use tch::{Device, Tensor};

fn save(tensors: &BTreeMap<String, Tensor>, path: &std::path::Path) {
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, path).unwrap();
}

#[test]
fn generated_specs_round_trip_through_inference() {
    for spec in [Spec::tiny_vit(), Spec::tiny_resnet()] {
        let clip = Clip::from_tensors(
            generate(&spec, 0),
            Activation::QuickGelu,
            Precision::Fp32,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(clip.config.text, spec.text);
        assert_eq!(clip.config.vision, spec.vision);
        assert_eq!(clip.config.embed_dim, spec.embed_dim);
        assert!((clip.logit_scale - 1.0 / 0.07).abs() < 1e-3);
    }
}

#[test]
fn mis_shaped_tensor_names_key_and_both_shapes() {
    let mut t = generate(&Spec::tiny_vit(), 0);
    t.insert(
        "transformer.resblocks.1.mlp.c_fc.weight".into(),
        Tensor::zeros([256, 63], (tch::Kind::Float, Device::Cpu)),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    save(&t, &path);
    let err = Clip::load(&path, Precision::Fp32, Device::Cpu)
        .err()
        .expect("mis-shaped weights must fail")
        .to_string();
    assert!(
        err.contains("transformer.resblocks.1.mlp.c_fc.weight"),
        "{err}"
    );
    assert!(
        err.contains("[256, 63]") && err.contains("[256, 64]"),
        "{err}"
    );
    assert!(err.contains("bad.safetensors"), "{err}");
}

#[test]
fn missing_tensor_is_named() {
    let mut t = generate(&Spec::tiny_resnet(), 0);
    t.remove("visual.layer3.0.bn2.running_var");
    let err = Clip::from_tensors(t, Activation::QuickGelu, Precision::Fp32, Device::Cpu)
        .err()
        .unwrap();
    assert!(
        matches!(&err, ClipError::MissingKey(k) if k == "visual.layer3.0.bn2.running_var"),
        "{err}"
    );
}

#[test]
fn non_weights_file_is_rejected_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    let err = weights::load(&path).err().unwrap().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("not a weights file"),
        "{err}"
    );
    let err = weights::load(&dir.path().join("absent.pt"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("absent.pt"), "{err}");
}

#[test]
fn wrapped_checkpoint_keys_are_unwrapped() {
    // A DDP training checkpoint saved as safetensors: every key under `state_dict.module.`.
    let t = generate(&Spec::tiny_vit(), 1);
    let wrapped: BTreeMap<String, Tensor> = t
        .iter()
        .map(|(k, v)| (format!("state_dict.module.{k}"), v.shallow_clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    save(&wrapped, &path);
    let w = weights::load(&path).unwrap();
    assert_eq!(w.layout, weights::Layout::OpenClip);
    assert_eq!(
        w.tensors.keys().collect::<Vec<_>>(),
        t.keys().collect::<Vec<_>>()
    );
}

#[test]
fn reduced_precision_stays_close_to_fp32() {
    let t = generate(&Spec::tiny_vit(), 2);
    let copy = |t: &BTreeMap<String, Tensor>| -> BTreeMap<String, Tensor> {
        t.iter().map(|(k, v)| (k.clone(), v.copy())).collect()
    };
    let px = Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let f32m = Clip::from_tensors(
        copy(&t),
        Activation::QuickGelu,
        Precision::Fp32,
        Device::Cpu,
    )
    .unwrap();
    let reference = subpt_trainer::clip::normalize(&tch::no_grad(|| f32m.encode_image(&px)));
    for p in [Precision::Bf16, Precision::Fp16] {
        let m = Clip::from_tensors(copy(&t), Activation::QuickGelu, p, Device::Cpu).unwrap();
        let f = subpt_trainer::clip::normalize(&tch::no_grad(|| m.encode_image(&px)));
        let diff = (&f - &reference).abs().max().double_value(&[]);
        // bf16 keeps 8 mantissa bits (~4e-3 relative per op); features stay within 5e-2.
        assert!(diff < 5e-2, "{p}: {diff}");
        assert!(diff > 0.0, "{p} did not change the computation");
    }
}

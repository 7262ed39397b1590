//! The default model is part of the repository (`assets/shapes-clip.safetensors.gz`): pretraining
//! is deterministic on one machine, but libtorch picks its kernels per processor, so the bytes it
//! makes differ from one CPU to the next. These tests check that the shipped file is the one its
//! card describes, that the card's inputs are today's default pretraining (so the command in the
//! README remakes it, up to the processor's float order), and that it loads and classifies.
use std::path::{Path, PathBuf};
use subpt_trainer::pretrain::{self, ModelCard, PretrainConfig};

use crate::common;

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(name)
}

fn card() -> ModelCard {
    let text = std::fs::read_to_string(asset("shapes-clip.card.json")).expect("shipped card");
    serde_json::from_str(&text).expect("a model card")
}

#[test]
fn the_shipped_weights_are_the_bytes_their_card_names() {
    let bytes = std::fs::read(asset("shapes-clip.safetensors.gz")).expect("shipped weights");
    let card = card();
    assert_eq!(
        subpt_trainer::digest::bytes_digest(&bytes),
        card.weights_sha256,
        "assets/shapes-clip.safetensors.gz is not the file its card describes"
    );
}

#[test]
fn the_shipped_model_is_todays_default_pretraining() {
    let card = card();
    let default = PretrainConfig::default();
    assert_eq!(
        serde_json::to_value(&card.config).unwrap(),
        serde_json::to_value(&default).unwrap(),
        "the shipped model's config is not `subpt-bench pretrain`'s default: remake it"
    );
    assert_eq!(card.threads, 1);
    let world = pretrain::world_digest(&default).unwrap();
    assert_eq!(
        pretrain::inputs_digest_at(&default, &world, &card.version),
        card.inputs_digest,
        "the shapes world (drawing or captions) changed since the shipped model was made: remake it"
    );
}

#[test]
fn the_shipped_model_loads_as_its_card_describes() {
    let out = common::succeeded(common::bench(&[
        "inspect",
        "--json",
        "--weights",
        asset("shapes-clip.safetensors.gz").to_str().unwrap(),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let card = card();
    let a = serde_json::to_value(&card.architecture).unwrap();
    // The architecture inferred from the weights is the one the card says was trained.
    for key in ["embed_dim", "text", "vision"] {
        assert_eq!(v[key], a[key], "{key}");
    }
    assert_eq!(v["parameters"].as_i64(), Some(card.parameters));
    assert!((v["logit_scale"].as_f64().unwrap() - card.logit_scale).abs() < 1e-3);
}

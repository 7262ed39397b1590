//! A feature cell encodes exactly what the cells of its dataset look up: after it ran, the
//! cells (zero-shot and trained, every evaluated subset) add nothing to the image cache, and a
//! second feature run finds everything cached.
use crate::common;
use std::collections::BTreeSet;
use std::path::Path;
use subpt_trainer::comm::Single;
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::run::run;
use subpt_trainer::engine::spec::Method;
use subpt_trainer::engine::warm::encode_test_features;
use tch::Device;

fn entries(cache: &Path, kind: &str) -> BTreeSet<String> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(kind) && n.ends_with(".safetensors"))
        .collect()
}

#[test]
fn cells_find_the_features_their_feature_cell_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = common::eurosat_and_tiny_clip(d);
    let spec = |method, subsample: SubsampleClasses, eval: &[SubsampleClasses]| {
        let mut s = preset(
            Protocol::FewShot,
            DatasetName::EuroSat,
            d.join("data"),
            method,
            2,
            1,
            w.clone(),
        );
        s.epochs = 2;
        s.cache_dir = d.join("cache");
        s.prompt.n_ctx = 4;
        s.subsample = subsample;
        s.eval_subsets = eval.to_vec();
        s
    };
    let mut features = spec(
        Method::Zsclip,
        SubsampleClasses::All,
        &[
            SubsampleClasses::All,
            SubsampleClasses::Base,
            SubsampleClasses::New,
        ],
    );
    features.shots = 1;
    features.seed = 0;
    let first = encode_test_features(&features, Device::Cpu).unwrap();
    assert_eq!(first.sets.len(), 3);
    assert!(first.sets.iter().all(|s| !s.cached && s.images > 0));
    assert_eq!(
        first.sets[0].images,
        first.sets[1].images + first.sets[2].images
    );
    let cache = d.join("cache");
    let (images, texts) = (entries(&cache, "image-"), entries(&cache, "text-"));
    assert_eq!(images.len(), 3);
    let store = subpt_trainer::cache::FeatureCache::new(&cache);
    for set in &first.sets {
        assert!(images.contains(&format!("{}.safetensors", set.entry)));
        assert!(store.has_entry(&set.entry));
    }
    let cells = [
        spec(
            Method::Zsclip,
            SubsampleClasses::All,
            &[SubsampleClasses::All],
        ),
        spec(
            Method::Zsclip,
            SubsampleClasses::Base,
            &[SubsampleClasses::Base, SubsampleClasses::New],
        ),
        spec(
            Method::Coop,
            SubsampleClasses::All,
            &[SubsampleClasses::All],
        ),
        spec(
            Method::Coop,
            SubsampleClasses::Base,
            &[SubsampleClasses::Base, SubsampleClasses::New],
        ),
    ];
    for (i, s) in cells.iter().enumerate() {
        run(s, &d.join(format!("cell{i}")), Device::Cpu, &Single).unwrap();
        assert_eq!(
            entries(&cache, "image-"),
            images,
            "cell {i} encoded test images again"
        );
    }
    // Zero-shot cells used the text features the feature cell cached.
    assert_eq!(entries(&cache, "text-"), texts);
    let again = encode_test_features(&features, Device::Cpu).unwrap();
    assert!(again.sets.iter().all(|s| s.cached));
}

//! The frozen-feature cache on a real split: first call encodes, second is served from disk,
//! a changed item list or weights digest misses, and cached values equal a direct encode.
use subpt_trainer::cache::{FeatureCache, Outcome};
use subpt_trainer::clip::config::Activation;
use subpt_trainer::clip::random_init::{generate, Spec};
use subpt_trainer::clip::{Clip, Precision};
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::image::load_rgb;
use subpt_trainer::data::transforms::TestTransform;
use subpt_trainer::data::DatasetName;
use subpt_trainer::digest::items_digest;
use subpt_trainer::features::{split_features, SplitKey};
use tch::{Device, Tensor};

#[test]
fn split_features_are_cached_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let splits =
        write_fixture(DatasetName::EuroSat, dir.path(), &FixtureOptions::default()).unwrap();
    let clip = Clip::from_tensors(
        generate(&Spec::tiny_vit(), 4),
        Activation::QuickGelu,
        Precision::Fp32,
        Device::Cpu,
    )
    .unwrap();
    let cache = FeatureCache::new(dir.path().join("cache"));
    let test = &splits.test;
    let key = SplitKey::new(
        "digest-a",
        &clip,
        "eurosat",
        "test",
        &items_digest(test).unwrap(),
    );
    let (f1, l1, o1) = split_features(&clip, &key, test, &cache, 3).unwrap();
    assert_eq!(o1, Outcome::Miss);
    assert_eq!(f1.size(), vec![test.len() as i64, 64]);
    let (f2, l2, o2) = split_features(&clip, &key, test, &cache, 3).unwrap();
    assert_eq!(o2, Outcome::Hit);
    assert!(f1.equal(&f2) && l1.equal(&l2));
    let labels: Vec<i64> = test.iter().map(|i| i.label as i64).collect();
    assert_eq!(Vec::<i64>::try_from(&l1).unwrap(), labels);
    // Cached features equal encoding the images one by one.
    let t = TestTransform::new(32).unwrap();
    for (k, item) in test.iter().enumerate().take(3) {
        let px =
            Tensor::from_slice(&t.apply(&load_rgb(&item.impath).unwrap())).view([1, 3, 32, 32]);
        let direct = tch::no_grad(|| clip.encode_image(&px));
        let d = (direct.get(0) - f1.get(k as i64))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 1e-5, "item {k}: {d}");
    }
    let fewer = &test[1..];
    let key2 = SplitKey::new(
        "digest-a",
        &clip,
        "eurosat",
        "test",
        &items_digest(fewer).unwrap(),
    );
    assert_eq!(
        split_features(&clip, &key2, fewer, &cache, 3).unwrap().2,
        Outcome::Miss
    );
    let key3 = SplitKey::new(
        "digest-b",
        &clip,
        "eurosat",
        "test",
        &items_digest(test).unwrap(),
    );
    assert_eq!(
        split_features(&clip, &key3, test, &cache, 3).unwrap().2,
        Outcome::Miss
    );
}

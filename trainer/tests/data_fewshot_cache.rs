//! The few-shot cache (`split_fewshot/`): our JSON entries, the pickle path through a codec, the
//! export format, and cache precedence.
use serde_json::Value;
use std::path::Path;
use subpt_trainer::data::fewshot::{
    draw_fewshot, read_subset_json, subset_to_json, write_subset_json,
};
use subpt_trainer::data::fewshot_cache::{
    cache_paths, load_or_draw_fewshot, prepare_fewshot, read_pickle, write_pickle, CacheMode,
    DatumPickleCodec, FewshotSource, PickledDatum, PickledFewshot,
};
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::{read_dataset, DataError, DatasetName};

fn setup(d: DatasetName) -> (tempfile::TempDir, subpt_trainer::data::DatasetSplits) {
    let dir = tempfile::tempdir().unwrap();
    let opts = FixtureOptions {
        train: vec![6, 2, 9, 3, 5],
        ..FixtureOptions::default()
    };
    write_fixture(d, dir.path(), &opts).unwrap();
    let splits = read_dataset(d, dir.path()).unwrap();
    (dir, splits)
}

#[test]
fn json_cache_is_written_then_preferred() {
    let d = DatasetName::OxfordPets;
    let (dir, splits) = setup(d);
    let (_, json_path) = cache_paths(d, dir.path(), 4, 2);
    assert!(json_path.ends_with("oxford_pets/split_fewshot/shot_4-seed_2.json"));

    let (sub, src) =
        load_or_draw_fewshot(d, dir.path(), &splits, 4, 2, CacheMode::Read, None).unwrap();
    assert_eq!(src, FewshotSource::Drawn);
    assert!(!json_path.exists(), "Read mode never writes");

    let (sub2, src) =
        load_or_draw_fewshot(d, dir.path(), &splits, 4, 2, CacheMode::ReadWrite, None).unwrap();
    assert_eq!((src, &sub2), (FewshotSource::Drawn, &sub));
    assert_eq!(sub, draw_fewshot(d, &splits, 4, 2).unwrap());

    // Replace the cached train list by another valid subset: the cache must win over a draw.
    let other = draw_fewshot(d, &splits, 4, 3).unwrap();
    assert_ne!(other.train, sub.train);
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    doc["train"] = subset_to_json(&other)["train"].clone();
    std::fs::write(&json_path, doc.to_string()).unwrap();
    let (cached, src) =
        load_or_draw_fewshot(d, dir.path(), &splits, 4, 2, CacheMode::Read, None).unwrap();
    assert_eq!(src, FewshotSource::Json(json_path.clone()));
    assert_eq!((cached.train, cached.val), (other.train, sub.val.clone()));
    let (off, _) =
        load_or_draw_fewshot(d, dir.path(), &splits, 4, 2, CacheMode::Off, None).unwrap();
    assert_eq!(off, sub, "Off ignores the cache");
}

#[test]
fn cache_entries_must_match_the_dataset() {
    let d = DatasetName::Caltech101;
    let (dir, splits) = setup(d);
    let path = dir.path().join("sub.json");
    write_subset_json(&draw_fewshot(d, &splits, 2, 1).unwrap(), &path).unwrap();
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (what, edit) in [
        (
            "label",
            serde_json::json!([good["train"][1][0], 4, good["train"][1][2]]),
        ),
        (
            "path",
            serde_json::json!(["nope/x.jpg", good["train"][1][1], good["train"][1][2]]),
        ),
    ] {
        let mut bad = good.clone();
        bad["train"][1] = edit;
        std::fs::write(&path, bad.to_string()).unwrap();
        let e = read_subset_json(&path, &splits).unwrap_err();
        assert!(matches!(e, DataError::CacheMismatch { .. }), "{what}: {e}");
        assert!(
            e.to_string().contains(&path.display().to_string())
                && e.to_string().contains("train entry 1"),
            "{e}"
        );
    }
}

#[test]
fn export_format_and_imagenet_train_only() {
    let d = DatasetName::Dtd;
    let (dir, splits) = setup(d);
    let sub = draw_fewshot(d, &splits, 4, 1).unwrap();
    let out = dir.path().join("out/fewshot.json");
    write_subset_json(&sub, &out).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let first = &v["train"][0];
    assert_eq!(first[0], Value::from(sub.train[0].relpath.clone()));
    assert_eq!(first[1], Value::from(sub.train[0].label));
    assert_eq!(first[2], Value::from(sub.train[0].classname.clone()));
    assert_eq!(
        v["val"].as_array().unwrap().len(),
        sub.val.as_ref().unwrap().len()
    );
    assert_eq!(read_subset_json(&out, &splits).unwrap(), sub);
    let prepared = dir.path().join("prepared.json");
    let (p, src) = prepare_fewshot(d, dir.path(), 4, 1, &prepared, None).unwrap();
    assert_eq!((p, src), (sub.clone(), FewshotSource::Drawn));
    assert_eq!(
        std::fs::read(&prepared).unwrap(),
        std::fs::read(&out).unwrap()
    );
    assert!(
        !d.info().split_fewshot_dir(dir.path()).exists(),
        "prepare leaves the dataset alone"
    );
    // The subset replaces train and val only.
    let applied = sub.apply(&splits);
    assert_eq!(
        (applied.train.len(), applied.test),
        (sub.train.len(), splits.test.clone())
    );

    let (dir, splits) = setup(DatasetName::ImageNet);
    let sub = draw_fewshot(DatasetName::ImageNet, &splits, 4, 1).unwrap();
    assert!(sub.val.is_none());
    assert_eq!(sub.apply(&splits).val, splits.test);
    let out = dir.path().join("in.json");
    write_subset_json(&sub, &out).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v.get("val").is_none());

    let (_dir, splits) = setup(DatasetName::ImageNetA);
    let e = draw_fewshot(DatasetName::ImageNetA, &splits, 1, 1).unwrap_err();
    assert!(matches!(e, DataError::TestOnly { .. }), "{e}");
}

/// Stands in for a pickle implementation: the same data model, stored as JSON.
struct JsonCodec;

fn datums_to_json(v: &[PickledDatum]) -> Value {
    v.iter()
        .map(|d| serde_json::json!([d.impath, d.label, d.domain, d.classname]))
        .collect()
}

fn datums_from_json(v: &Value) -> Vec<PickledDatum> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| PickledDatum {
            impath: e[0].as_str().unwrap().into(),
            label: e[1].as_i64().unwrap(),
            domain: e[2].as_i64().unwrap(),
            classname: e[3].as_str().unwrap().into(),
        })
        .collect()
}

impl DatumPickleCodec for JsonCodec {
    fn decode(&self, bytes: &[u8]) -> Result<PickledFewshot, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(PickledFewshot {
            train: datums_from_json(&v["train"]),
            val: v.get("val").map(datums_from_json),
        })
    }
    fn encode(&self, data: &PickledFewshot) -> Result<Vec<u8>, String> {
        let mut v = serde_json::json!({"train": datums_to_json(&data.train)});
        if let Some(val) = &data.val {
            v["val"] = datums_to_json(val);
        }
        Ok(v.to_string().into_bytes())
    }
}

#[test]
fn pickled_caches_from_another_machine_resolve_by_relpath() {
    let d = DatasetName::StanfordCars;
    let (dir, splits) = setup(d);
    let (pkl, json_path) = cache_paths(d, dir.path(), 2, 0);
    let (sub, src) = load_or_draw_fewshot(
        d,
        dir.path(),
        &splits,
        2,
        0,
        CacheMode::ReadWrite,
        Some(&JsonCodec),
    )
    .unwrap();
    assert_eq!(src, FewshotSource::Drawn);
    assert!(pkl.is_file() && json_path.is_file());
    let written = JsonCodec.decode(&std::fs::read(&pkl).unwrap()).unwrap();
    assert_eq!(Path::new(&written.train[0].impath), sub.train[0].impath);
    assert!(written.train.iter().all(|t| t.domain == 0));

    // Re-root the datums as if Dassl had written them elsewhere; also use a different subset
    // so the pickle visibly takes precedence over the JSON cache.
    let other = draw_fewshot(d, &splits, 2, 5).unwrap();
    let foreign = dir.path().join("foreign.pkl");
    write_pickle(&foreign, &JsonCodec, &other).unwrap();
    let mut data = JsonCodec.decode(&std::fs::read(&foreign).unwrap()).unwrap();
    let here = dir.path().display().to_string();
    for dt in data.train.iter_mut().chain(data.val.iter_mut().flatten()) {
        dt.impath = dt.impath.replace(&here, "/mnt/elsewhere/DATA");
    }
    std::fs::write(&pkl, JsonCodec.encode(&data).unwrap()).unwrap();
    let (got, src) = load_or_draw_fewshot(
        d,
        dir.path(),
        &splits,
        2,
        0,
        CacheMode::Read,
        Some(&JsonCodec),
    )
    .unwrap();
    assert_eq!(src, FewshotSource::DasslPickle(pkl.clone()));
    assert_eq!(got, other);
    // Without a codec the pickle cannot be read and the JSON cache is used.
    let (got, src) =
        load_or_draw_fewshot(d, dir.path(), &splits, 2, 0, CacheMode::Read, None).unwrap();
    assert_eq!((got, src), (sub, FewshotSource::Json(json_path)));

    data.train[0].classname = "some other car".into();
    std::fs::write(&pkl, JsonCodec.encode(&data).unwrap()).unwrap();
    let e = read_pickle(&pkl, &JsonCodec, &splits).unwrap_err();
    assert!(
        matches!(e, DataError::CacheMismatch { .. }) && e.to_string().contains("train[0]"),
        "{e}"
    );
    std::fs::write(&pkl, b"garbage").unwrap();
    let e = read_pickle(&pkl, &JsonCodec, &splits).unwrap_err();
    assert!(matches!(e, DataError::Pickle { .. }), "{e}");
}

//! Dassl's few-shot pickle: files pickled by CPython with Dassl's object layout are read, and
//! ours load in CPython as `Datum` objects (tests/oracle/dassl_pickle_oracle.py).
use crate::common;

use serde_json::{json, Value};
use subpt_trainer::data::fewshot::{draw_fewshot, FewshotSubset};
use subpt_trainer::data::fewshot_cache::{
    cache_paths, load_or_draw_fewshot, CacheMode, FewshotSource,
};
use subpt_trainer::data::fewshot_pickle::DasslPickle;
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::{read_dataset, DataError, DatasetName, DatasetSplits, Item};

fn setup(d: DatasetName) -> (tempfile::TempDir, DatasetSplits) {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(d, dir.path(), &FixtureOptions::default()).unwrap();
    let splits = read_dataset(d, dir.path()).unwrap();
    (dir, splits)
}

fn entries(items: &[Item], from: &str, to: &str) -> Value {
    items
        .iter()
        .map(|i| {
            json!([
                i.impath.display().to_string().replace(from, to),
                i.label,
                i.classname
            ])
        })
        .collect()
}

#[test]
fn cpython_written_caches_are_used() {
    for d in [DatasetName::OxfordPets, DatasetName::ImageNet] {
        let (dir, splits) = setup(d);
        let (pkl, _) = cache_paths(d, dir.path(), 2, 1);
        std::fs::create_dir_all(pkl.parent().unwrap()).unwrap();
        // Dassl drew these on another machine; a different seed makes the cache observable.
        let theirs: FewshotSubset = draw_fewshot(d, &splits, 2, 9).unwrap();
        let here = dir.path().display().to_string();
        common::run_json(
            "dassl_pickle_oracle.py",
            &json!({
                "mode": "write", "out": pkl,
                "train": entries(&theirs.train, &here, "/srv/other/DATA"),
                "val": theirs.val.as_deref().map(|v| entries(v, &here, "/srv/other/DATA")),
            }),
        );
        let (got, src) = load_or_draw_fewshot(
            d,
            dir.path(),
            &splits,
            2,
            1,
            CacheMode::Read,
            Some(&DasslPickle),
        )
        .unwrap();
        assert_eq!(src, FewshotSource::DasslPickle(pkl.clone()), "{d}");
        assert_eq!(got, theirs, "{d}");
        assert_eq!(got.val.is_none(), d == DatasetName::ImageNet);
    }
}

#[test]
fn our_caches_load_in_cpython_as_datums() {
    let d = DatasetName::Dtd;
    let (dir, splits) = setup(d);
    let (sub, _) = load_or_draw_fewshot(
        d,
        dir.path(),
        &splits,
        4,
        3,
        CacheMode::ReadWrite,
        Some(&DasslPickle),
    )
    .unwrap();
    let (pkl, _) = cache_paths(d, dir.path(), 4, 3);
    let loaded = common::run_json(
        "dassl_pickle_oracle.py",
        &json!({"mode": "read", "path": pkl}),
    );
    let want = |items: &[Item]| -> Value {
        items
            .iter()
            .map(|i| json!([i.impath.display().to_string(), i.label, 0, i.classname]))
            .collect()
    };
    assert_eq!(loaded["train"], want(&sub.train));
    assert_eq!(loaded["val"], want(sub.val.as_deref().unwrap()));
    // And we read back what we wrote.
    let (again, src) = load_or_draw_fewshot(
        d,
        dir.path(),
        &splits,
        4,
        3,
        CacheMode::Read,
        Some(&DasslPickle),
    )
    .unwrap();
    assert_eq!((again, src), (sub, FewshotSource::DasslPickle(pkl)));
}

#[test]
fn unexpected_pickles_are_errors_naming_the_file() {
    let d = DatasetName::EuroSat;
    let (dir, splits) = setup(d);
    let (pkl, _) = cache_paths(d, dir.path(), 1, 1);
    std::fs::create_dir_all(pkl.parent().unwrap()).unwrap();
    let list = subpt_trainer::pickle::write(&subpt_trainer::pickle::Value::List(vec![])).unwrap();
    std::fs::write(&pkl, list).unwrap();
    let e = load_or_draw_fewshot(
        d,
        dir.path(),
        &splits,
        1,
        1,
        CacheMode::Read,
        Some(&DasslPickle),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::Pickle { .. }), "{e}");
    assert!(
        e.to_string().contains(&pkl.display().to_string()) && e.to_string().contains("dict"),
        "{e}"
    );
}

//! Readers on the synthetic fixtures of every layout, and every reader error.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::{read_dataset, DataError, DatasetName, DatasetSplits};

fn fixture(d: DatasetName) -> (tempfile::TempDir, DatasetSplits) {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_fixture(d, dir.path(), &FixtureOptions::default()).unwrap();
    (dir, expected)
}

fn per_class(items: &[subpt_trainer::data::Item]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for it in items {
        *m.entry(it.label).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_layout_reads_back_what_the_fixture_wrote() {
    let opts = FixtureOptions::default();
    for d in DatasetName::ALL {
        let (dir, expected) = fixture(d);
        let got = read_dataset(d, dir.path()).unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(got, expected, "{d}");
        let info = d.info();
        for it in got.train.iter().chain(&got.val).chain(&got.test) {
            assert!(
                it.impath.is_absolute() && it.impath.is_file(),
                "{d}: {:?}",
                it.impath
            );
            assert_eq!(it.impath, info.image_root(dir.path()).join(&it.relpath));
            assert_eq!(got.classnames[it.label], it.classname, "{d}");
        }
        if info.test_only {
            assert!(got.train.is_empty() && got.val.is_empty(), "{d}");
        } else {
            // Per-class counts are the fixture's, independent of list order.
            let want: BTreeMap<usize, usize> = (0..opts.classes)
                .map(|c| (c, opts.train[c % opts.train.len()]))
                .collect();
            assert_eq!(per_class(&got.train), want, "{d}");
            assert_eq!(got.num_classes(), opts.classes, "{d}");
        }
    }
}

#[test]
fn folder_layouts_follow_dassl_label_rules() {
    let (dir, _) = fixture(DatasetName::ImageNet);
    let s = read_dataset(DatasetName::ImageNet, dir.path()).unwrap();
    assert_eq!(s.val, s.test, "ImageNet's val is its test split");
    assert_eq!(
        s.classnames[..3],
        ["tench", "goldfish", "great white shark"]
    );
    assert!(s.train[0].relpath.starts_with("train/n01440764/"));
    let rel: Vec<&str> = s.train.iter().map(|i| i.relpath.as_str()).collect();
    let mut sorted = rel.clone();
    sorted.sort();
    assert_eq!(rel, sorted, "wnid folders and files are sorted");

    // -A / -R: README.txt is skipped and labels index the sorted folders, not classnames.txt.
    for d in [DatasetName::ImageNetA, DatasetName::ImageNetR] {
        let (dir, _) = fixture(d);
        let s = read_dataset(d, dir.path()).unwrap();
        assert_eq!(
            s.classnames[..3],
            ["tench", "great white shark", "hammerhead shark"],
            "{d}"
        );
        assert!(s.test.iter().all(|i| !i.relpath.contains("README")));
    }
    // V2: folder `i` is line `i` of classnames.txt.
    let (dir, _) = fixture(DatasetName::ImageNetV2);
    let s = read_dataset(DatasetName::ImageNetV2, dir.path()).unwrap();
    assert!(s
        .test
        .iter()
        .all(|i| i.relpath.starts_with(&format!("{}/", i.label))));

    // Aircraft: label = line index in variants.txt; relpath = <id>.jpg.
    let (dir, _) = fixture(DatasetName::FgvcAircraft);
    let s = read_dataset(DatasetName::FgvcAircraft, dir.path()).unwrap();
    let variants = std::fs::read_to_string(dir.path().join("fgvc_aircraft/variants.txt")).unwrap();
    let lines: Vec<&str> = variants.lines().collect();
    assert_eq!(s.classnames, lines);
    assert!(s
        .test
        .iter()
        .all(|i| lines[i.label] == i.classname && i.relpath.ends_with(".jpg")));

    // Cars: paths relative to the dataset dir.
    let (dir, _) = fixture(DatasetName::StanfordCars);
    let s = read_dataset(DatasetName::StanfordCars, dir.path()).unwrap();
    assert!(s.train.iter().all(|i| i.relpath.starts_with("cars_train/")));
    assert!(s.test.iter().all(|i| i.relpath.starts_with("cars_test/")));
}

fn read_err(d: DatasetName, root: &Path) -> DataError {
    match read_dataset(d, root) {
        Ok(_) => panic!("{d}: expected an error"),
        Err(e) => e,
    }
}

fn assert_names(e: &DataError, path: &Path) {
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} should name {}",
        path.display()
    );
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn missing_root_dataset_dir_and_split_file() {
    let nowhere = PathBuf::from("/nonexistent/subpt-data");
    let e = read_err(DatasetName::Dtd, &nowhere);
    assert!(matches!(e, DataError::MissingRoot { .. }), "{e}");
    assert_names(&e, &nowhere);

    let empty = tempfile::tempdir().unwrap();
    let e = read_err(DatasetName::Dtd, empty.path());
    assert!(matches!(e, DataError::MissingDatasetDir { .. }), "{e}");
    assert_names(&e, &empty.path().join("dtd"));

    let (dir, _) = fixture(DatasetName::Dtd);
    let split = dir.path().join("dtd/split_zhou_DescribableTextures.json");
    std::fs::remove_file(&split).unwrap();
    let e = read_err(DatasetName::Dtd, dir.path());
    assert!(matches!(e, DataError::MissingSplitFile { .. }), "{e}");
    assert_names(&e, &split);

    let (dir, _) = fixture(DatasetName::FgvcAircraft);
    let val = dir.path().join("fgvc_aircraft/images_variant_val.txt");
    std::fs::remove_file(&val).unwrap();
    assert_names(&read_err(DatasetName::FgvcAircraft, dir.path()), &val);

    let (dir, _) = fixture(DatasetName::ImageNetSketch);
    let names = dir.path().join("imagenet-sketch/classnames.txt");
    std::fs::remove_file(&names).unwrap();
    assert_names(&read_err(DatasetName::ImageNetSketch, dir.path()), &names);
}

#[test]
fn malformed_json_names_file_split_and_entry() {
    let (dir, _) = fixture(DatasetName::EuroSat);
    let split = dir.path().join("eurosat/split_zhou_EuroSAT.json");
    std::fs::write(&split, "{\"train\": [").unwrap();
    let e = read_err(DatasetName::EuroSat, dir.path());
    assert!(matches!(e, DataError::MalformedJson { .. }), "{e}");
    assert_names(&e, &split);

    let (dir, _) = fixture(DatasetName::EuroSat);
    let split = split_path(&dir, DatasetName::EuroSat);
    edit_json(&split, |v| {
        v["val"][1][1] = serde_json::json!("two");
    });
    let e = read_err(DatasetName::EuroSat, dir.path());
    match &e {
        DataError::MalformedEntry { split, index, .. } => {
            assert_eq!((split.as_str(), *index), ("val", 1))
        }
        other => panic!("{other}"),
    }
    assert_names(&e, &split);

    for (key, bad) in [
        ("test", serde_json::json!(null)),
        ("train", serde_json::json!([["a.jpg", -1, "x"]])),
    ] {
        let (dir, _) = fixture(DatasetName::EuroSat);
        edit_json(&split_path(&dir, DatasetName::EuroSat), |v| {
            if bad.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = bad.clone();
            }
        });
        let e = read_err(DatasetName::EuroSat, dir.path());
        assert!(
            matches!(
                e,
                DataError::MalformedJson { .. } | DataError::MalformedEntry { .. }
            ),
            "{e}"
        );
    }
}

fn split_path(dir: &tempfile::TempDir, d: DatasetName) -> PathBuf {
    let info = d.info();
    match info.split {
        subpt_trainer::data::SplitSource::SplitJson(f) => info.dataset_dir(dir.path()).join(f),
        _ => unreachable!(),
    }
}

#[test]
fn missing_image_is_reported_with_its_path() {
    for d in [
        DatasetName::OxfordPets,
        DatasetName::StanfordCars,
        DatasetName::FgvcAircraft,
    ] {
        let (dir, expected) = fixture(d);
        let victim = &expected.test[2].impath;
        std::fs::remove_file(victim).unwrap();
        let e = read_err(d, dir.path());
        assert!(matches!(e, DataError::MissingImage { .. }), "{d}: {e}");
        assert_names(&e, victim);
    }
}

#[test]
fn classname_disagreement_and_label_range() {
    let (dir, _) = fixture(DatasetName::Food101);
    let split = split_path(&dir, DatasetName::Food101);
    edit_json(&split, |v| {
        v["test"][0][2] = serde_json::json!("not the same name")
    });
    let e = read_err(DatasetName::Food101, dir.path());
    assert!(matches!(e, DataError::ClassnameConflict { .. }), "{e}");
    assert_names(&e, &split);

    let (dir, _) = fixture(DatasetName::Food101);
    let split = split_path(&dir, DatasetName::Food101);
    edit_json(&split, |v| v["test"][3][1] = serde_json::json!(77));
    let e = read_err(DatasetName::Food101, dir.path());
    match &e {
        DataError::LabelOutOfRange {
            split,
            index,
            label,
            num_classes,
            ..
        } => {
            assert_eq!(
                (split.as_str(), *index, *label, *num_classes),
                ("test", 3, 77, 5)
            )
        }
        other => panic!("{other}"),
    }
    assert_names(&e, &split);

    // A training label with no item (a gap) would misalign classnames[label].
    let (dir, _) = fixture(DatasetName::Food101);
    edit_json(&split_path(&dir, DatasetName::Food101), |v| {
        let train = v["train"].as_array_mut().unwrap();
        train.retain(|e| e[1] != 1);
    });
    assert!(matches!(
        read_err(DatasetName::Food101, dir.path()),
        DataError::MissingClass { label: 1, .. }
    ));
}

#[test]
fn text_list_errors() {
    let (dir, _) = fixture(DatasetName::FgvcAircraft);
    let test_txt = dir.path().join("fgvc_aircraft/images_variant_test.txt");
    let mut text = std::fs::read_to_string(&test_txt).unwrap();
    text.push_str("1234567 Boeing 999\n");
    std::fs::write(&test_txt, text).unwrap();
    let e = read_err(DatasetName::FgvcAircraft, dir.path());
    assert!(
        matches!(e, DataError::UnknownClass { ref name, .. } if name == "Boeing 999"),
        "{e}"
    );
    assert_names(&e, &test_txt);

    let (dir, _) = fixture(DatasetName::FgvcAircraft);
    let variants = dir.path().join("fgvc_aircraft/variants.txt");
    let text = std::fs::read_to_string(&variants)
        .unwrap()
        .replacen('\n', "\n\n", 1);
    std::fs::write(&variants, text).unwrap();
    let e = read_err(DatasetName::FgvcAircraft, dir.path());
    assert!(matches!(e, DataError::MalformedLine { line: 2, .. }), "{e}");

    let (dir, _) = fixture(DatasetName::ImageNet);
    let stray = dir.path().join("imagenet/images/train/n00000001");
    std::fs::create_dir_all(&stray).unwrap();
    let e = read_err(DatasetName::ImageNet, dir.path());
    assert!(
        matches!(e, DataError::UnknownClass { ref name, .. } if name == "n00000001"),
        "{e}"
    );
    assert_names(&e, &stray);

    let (dir, _) = fixture(DatasetName::ImageNet);
    std::fs::remove_dir_all(dir.path().join("imagenet/images/val/n01443537")).unwrap();
    let e = read_err(DatasetName::ImageNet, dir.path());
    assert!(
        matches!(e, DataError::FolderMismatch { ref detail, .. } if detail.contains("n01443537")),
        "{e}"
    );

    let (dir, _) = fixture(DatasetName::ImageNetV2);
    let gone = dir
        .path()
        .join("imagenetv2/imagenetv2-matched-frequency-format-val/3");
    std::fs::remove_dir_all(&gone).unwrap();
    let e = read_err(DatasetName::ImageNetV2, dir.path());
    assert!(matches!(e, DataError::MissingDir { .. }), "{e}");
    assert_names(&e, &gone);

    let (dir, _) = fixture(DatasetName::ImageNetR);
    let names = dir.path().join("imagenet-rendition/classnames.txt");
    std::fs::write(&names, "n01440764\n").unwrap();
    let e = read_err(DatasetName::ImageNetR, dir.path());
    assert!(matches!(e, DataError::MalformedLine { line: 1, .. }), "{e}");
    assert_names(&e, &names);
}

#[test]
fn dataset_lists_feed_the_batch_loader() {
    use subpt_trainer::data::loader::Prefetch;
    use subpt_trainer::data::transforms::TestTransform;
    let (dir, _) = fixture(DatasetName::OxfordFlowers);
    let s = read_dataset(DatasetName::OxfordFlowers, dir.path()).unwrap();
    let want: Vec<i64> = s.test.iter().map(|i| i.label as i64).collect();
    let batches = Prefetch::test(
        std::sync::Arc::new(s.test),
        4,
        TestTransform::new(8).unwrap(),
    )
    .unwrap();
    let mut got = Vec::new();
    for b in batches {
        let b = b.unwrap();
        assert_eq!(b.images.size()[1..], [3, 8, 8]);
        got.extend(Vec::<i64>::try_from(&b.labels).unwrap());
    }
    assert_eq!(got, want);
}

//! `verify` on fixtures (counts, missing and unreadable files) and the Fashion-MNIST conversion
//! (synthetic idx files, and the Debian files against a numpy reading of them).
use crate::common;

use flate2::{write::GzEncoder, Compression};
use std::io::Write;
use std::path::Path;
use subpt_trainer::data::fashion_mnist::{self, FashionMnistOptions, CLASSNAMES};
use subpt_trainer::data::fixtures::{write_fixture, FixtureOptions};
use subpt_trainer::data::verify::{verify_with, VerifyOptions};
use subpt_trainer::data::{read_dataset, verify, DataError, DatasetName, DatasetSplits, Item};

#[test]
fn verify_counts_every_layout() {
    for d in DatasetName::ALL {
        let dir = tempfile::tempdir().unwrap();
        let exp = write_fixture(d, dir.path(), &FixtureOptions::default()).unwrap();
        let r = verify(d, dir.path()).unwrap();
        assert_eq!(
            (r.train.items, r.val.items, r.test.items),
            (exp.train.len(), exp.val.len(), exp.test.len()),
            "{d}"
        );
        assert_eq!(r.class_count, exp.num_classes(), "{d}");
        assert!(r.files_ok(), "{d}: {r}");
        // Fixtures are smaller than the real datasets, and verify says so.
        assert!(!r.ok() && r.to_string().contains("MISMATCH"), "{d}");
        let mut unique: Vec<_> = exp
            .train
            .iter()
            .chain(&exp.val)
            .chain(&exp.test)
            .map(|i| &i.impath)
            .collect();
        unique.sort();
        unique.dedup();
        assert_eq!(r.files_checked, unique.len(), "{d}");
    }
}

#[test]
fn verify_lists_missing_and_unreadable_files() {
    let d = DatasetName::Sun397;
    let dir = tempfile::tempdir().unwrap();
    let exp = write_fixture(d, dir.path(), &FixtureOptions::default()).unwrap();
    let gone = exp.train[0].impath.clone();
    let junk = exp.val[0].impath.clone();
    let cut = exp.test[0].impath.clone();
    std::fs::remove_file(&gone).unwrap();
    std::fs::write(&junk, b"this is not an image").unwrap();
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let r = verify(d, dir.path()).unwrap();
    assert_eq!(r.missing, vec![gone.clone()]);
    assert!(r.unreadable.iter().any(|(p, _)| *p == junk), "{r}");
    let full = verify_with(d, dir.path(), VerifyOptions { full_decode: true }).unwrap();
    let bad: Vec<_> = full.unreadable.iter().map(|(p, _)| p.clone()).collect();
    assert!(bad.contains(&junk) && bad.contains(&cut), "{full}");
    assert!(full.to_string().contains(&gone.display().to_string()));
    // Structural errors stay errors.
    std::fs::write(dir.path().join("sun397/split_zhou_SUN397.json"), "[]").unwrap();
    assert!(matches!(
        verify(d, dir.path()),
        Err(DataError::MalformedJson { .. })
    ));
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

fn write_gz(path: &Path, bytes: &[u8]) {
    let mut enc = GzEncoder::new(std::fs::File::create(path).unwrap(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap();
}

/// Train: 30 images (labels i % 10), gzipped; test: 12 images, raw. 4x3 pixels each.
fn synthetic_source(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let px = |n: usize, salt: usize| -> Vec<u8> {
        (0..n * 12).map(|p| ((p * 7 + salt) % 256) as u8).collect()
    };
    let (train_px, test_px) = (px(30, 1), px(12, 100));
    let train_labels: Vec<u8> = (0..30).map(|i| (i % 10) as u8).collect();
    let test_labels: Vec<u8> = (0..12).map(|i| (9 - i % 10) as u8).collect();
    write_gz(
        &dir.join("train-images-idx3-ubyte.gz"),
        &idx_bytes(&[30, 4, 3], &train_px),
    );
    write_gz(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &idx_bytes(&[30], &train_labels),
    );
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx_bytes(&[12, 4, 3], &test_px),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[12], &test_labels),
    )
    .unwrap();
    (train_px, test_px)
}

fn source_index(it: &Item) -> usize {
    let stem = Path::new(&it.relpath)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    stem.rsplit('_').next().unwrap().parse().unwrap()
}

fn pixels(it: &Item) -> Vec<u8> {
    image::open(&it.impath).unwrap().into_luma8().into_raw()
}

#[test]
fn fashion_mnist_from_synthetic_idx() {
    let src = tempfile::tempdir().unwrap();
    let (train_px, test_px) = synthetic_source(src.path());
    let root = tempfile::tempdir().unwrap();
    let opts = FashionMnistOptions {
        val_per_class: 1,
        max_per_class: Some(1),
        skip_train: 0,
        ..Default::default()
    };
    let s = fashion_mnist::convert(src.path(), root.path(), &opts).unwrap();
    // Per class: train file has indices c, c+10, c+20 -> val c, train c+10; test keeps 1.
    assert_eq!(
        s.val.iter().map(source_index).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        s.train.iter().map(source_index).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    assert_eq!(s.test.len(), 10);
    assert_eq!(s.classnames, CLASSNAMES);
    for it in s.train.iter().chain(&s.val) {
        let i = source_index(it);
        assert_eq!(it.label, i % 10);
        assert_eq!(pixels(it), train_px[i * 12..(i + 1) * 12]);
    }
    for it in &s.test {
        let i = source_index(it);
        assert_eq!(it.label, 9 - i % 10);
        assert_eq!(pixels(it), test_px[i * 12..(i + 1) * 12]);
    }
    assert_eq!(
        read_dataset(DatasetName::FashionMnist, root.path()).unwrap(),
        s
    );
    assert!(
        !fashion_mnist::ensure(src.path(), root.path(), &opts).unwrap(),
        "already converted"
    );

    std::fs::write(
        src.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[12], &[10; 12]),
    )
    .unwrap();
    let e = fashion_mnist::convert(src.path(), root.path(), &opts).unwrap_err();
    assert!(
        matches!(e, DataError::MalformedIdx { .. }) && e.to_string().contains("t10k-labels"),
        "{e}"
    );
    std::fs::write(
        src.path().join("t10k-labels-idx1-ubyte"),
        idx_bytes(&[11], &[1; 11]),
    )
    .unwrap();
    let e = fashion_mnist::convert(src.path(), root.path(), &opts).unwrap_err();
    assert!(e.to_string().contains("12 images but 11 labels"), "{e}");
    std::fs::remove_file(src.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let e = fashion_mnist::convert(src.path(), root.path(), &opts).unwrap_err();
    assert!(matches!(e, DataError::MissingSplitFile { .. }), "{e}");
}

#[test]
fn fashion_mnist_from_debian_matches_numpy() {
    let source = fashion_mnist::find_source().unwrap_or_else(|| {
        panic!(
            "Fashion-MNIST idx files not found in {} (install dataset-fashion-mnist with \
             scripts/setup-system.sh, or point SUBPT_FASHION_MNIST at a copy)",
            fashion_mnist::DEBIAN_DIR
        )
    });
    let root = tempfile::tempdir().unwrap();
    let opts = FashionMnistOptions {
        val_per_class: 2,
        max_per_class: Some(3),
        skip_train: 0,
        ..Default::default()
    };
    let s: DatasetSplits = fashion_mnist::convert(&source, root.path(), &opts).unwrap();
    let params = serde_json::json!({"source": source, "val_per_class": 2, "cap": 3});
    let expected = common::run_json("fashion_mnist_oracle.py", &params);
    for (name, items) in [("train", &s.train), ("val", &s.val), ("test", &s.test)] {
        let exp = expected[name].as_array().unwrap();
        assert_eq!(items.len(), exp.len(), "{name}");
        for (it, e) in items.iter().zip(exp) {
            assert_eq!(source_index(it) as u64, e[0].as_u64().unwrap(), "{name}");
            assert_eq!(
                it.label as u64,
                e[1].as_u64().unwrap(),
                "{name} {}",
                it.relpath
            );
            assert_eq!(it.classname, CLASSNAMES[it.label]);
            let px: Vec<u8> = e[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u8)
                .collect();
            assert_eq!(pixels(it), px, "{name} {}", it.relpath);
        }
    }
    let r = verify(DatasetName::FashionMnist, root.path()).unwrap();
    assert!(r.ok(), "{r}");
}

#[test]
fn downstream_split_leaves_out_the_pretraining_images_and_corruptions_keep_the_items() {
    let src = tempfile::tempdir().unwrap();
    let (train_px, _) = synthetic_source(src.path());
    let root = tempfile::tempdir().unwrap();
    let clean = FashionMnistOptions {
        val_per_class: 1,
        skip_train: 10,
        ..Default::default()
    };
    let s = fashion_mnist::convert(src.path(), root.path(), &clean).unwrap();
    // Train-file images 0..10 are the pretraining corpus: val takes 10..20, train 20..30.
    let val: Vec<usize> = s.val.iter().map(source_index).collect();
    let train: Vec<usize> = s.train.iter().map(source_index).collect();
    assert_eq!(val, (10..20).collect::<Vec<_>>());
    assert_eq!(train, (20..30).collect::<Vec<_>>());
    assert_eq!(s.test.len(), 12);
    let dark = FashionMnistOptions {
        corruption: Some(fashion_mnist::Corruption::Dark),
        ..clean
    };
    let d = fashion_mnist::convert(src.path(), root.path(), &dark).unwrap();
    assert_eq!(
        read_dataset(DatasetName::FashionMnistDark, root.path()).unwrap(),
        d
    );
    let rel = |v: &[Item]| v.iter().map(|i| i.relpath.clone()).collect::<Vec<_>>();
    assert_eq!(rel(&d.train), rel(&s.train));
    assert_eq!(rel(&d.test), rel(&s.test));
    for it in &d.train {
        let i = source_index(it);
        let want: Vec<u8> = train_px[i * 12..(i + 1) * 12]
            .iter()
            .map(|&p| (p as f64 * 0.5).round() as u8)
            .collect();
        assert_eq!(pixels(it), want, "{}", it.relpath);
    }
    // Up to date per options: the same options convert nothing, other options convert again.
    assert!(!fashion_mnist::ensure(src.path(), root.path(), &dark).unwrap());
    let other = FashionMnistOptions { seed: 3, ..dark };
    assert!(fashion_mnist::ensure(src.path(), root.path(), &other).unwrap());
}

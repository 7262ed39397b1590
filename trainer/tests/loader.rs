//! The batch loader against the single-image path (decoding and transforms, which the imaging
//! crate checks against PIL + torchvision) on the PIL oracle's images: order, batch sizes,
//! augmentation keyed by item, errors that name the file; and its throughput.
use crate::common;
use common::Checks;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use subpt_trainer::data::image::load_rgb;
use subpt_trainer::data::loader::{
    dassl_drop_last, load_batch, ordered_batches, Pipeline, Prefetch,
};
use subpt_trainer::data::transforms::{SeededRng, TestTransform, TrainTransform};

fn run_oracle(out: &Path) {
    common::run("image_oracle.py", &[out]);
}

#[test]
fn the_loader_gives_the_single_image_path_batch_by_batch() {
    let dir = tempfile::tempdir().unwrap();
    run_oracle(dir.path());
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
    let images = cases["images"].as_array().unwrap();
    let mut c = Checks { failures: vec![] };
    check_loader(&mut c, &dir.path().join("images"), images);
    assert!(
        c.failures.is_empty(),
        "{} checks failed:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
}

fn check_loader(c: &mut Checks, img_dir: &Path, images: &[serde_json::Value]) {
    let items: Vec<(PathBuf, i64)> = images
        .iter()
        .enumerate()
        .map(|(k, case)| (img_dir.join(case["file"].as_str().unwrap()), 10 + k as i64))
        .collect();
    let n = items.len();
    let items = Arc::new(items);
    let size = 32;
    let test = TestTransform::new(size).unwrap();
    let singles: Vec<Vec<f32>> = items
        .iter()
        .map(|(p, _)| test.apply(&load_rgb(p).unwrap()))
        .collect();

    // Evaluation order: sequential, short last batch, pixels equal to the single-image path.
    let batches: Vec<_> = Prefetch::test(items.clone(), 4, test).unwrap().collect();
    c.check(batches.len() == n.div_ceil(4), || {
        format!("test loader made {} batches for {n} items", batches.len())
    });
    let mut seen = 0;
    for batch in batches {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return c.failures.push(format!("test loader: {e}")),
        };
        let b = batch.indices.len();
        c.check(
            batch.images.size() == [b as i64, 3, size as i64, size as i64],
            || format!("batch shape {:?}", batch.images.size()),
        );
        c.check(
            batch.indices == (seen..seen + b).collect::<Vec<_>>(),
            || format!("test order {:?}", batch.indices),
        );
        let labels = Vec::<i64>::try_from(&batch.labels).unwrap();
        c.check(
            labels
                == batch
                    .indices
                    .iter()
                    .map(|&i| 10 + i as i64)
                    .collect::<Vec<_>>(),
            || format!("labels {labels:?}"),
        );
        let flat = Vec::<f32>::try_from(&batch.images.flatten(0, -1)).unwrap();
        for (k, &i) in batch.indices.iter().enumerate() {
            let per = 3 * size * size;
            c.check(flat[k * per..(k + 1) * per] == singles[i][..], || {
                format!("loader item {i} differs from the single-image transform")
            });
        }
        seen += b;
    }

    // Training order: the caller's order, drop_last, per-item draws keyed by epoch position.
    let train = TrainTransform::new(size).unwrap();
    let order: Vec<usize> = (0..n).rev().collect();
    let epoch = |seed: u64| -> Vec<Vec<f32>> {
        Prefetch::train(items.clone(), &order, 5, true, train, move |pos| {
            SeededRng::for_item(seed, pos as u64)
        })
        .unwrap()
        .map(|b| Vec::<f32>::try_from(&b.unwrap().images.flatten(0, -1)).unwrap())
        .collect()
    };
    let (a, b, other) = (epoch(3), epoch(3), epoch(4));
    c.check(a.len() == n / 5, || {
        format!("drop_last kept {} batches of {n} items", a.len())
    });
    c.check(a == b, || "same seed gave different augmentations".into());
    c.check(a != other, || {
        "different seeds gave the same augmentations".into()
    });
    let first = &order[..5];
    let pipeline = Pipeline::Train {
        transform: train,
        rng_for: |pos: usize| SeededRng::for_item(3, pos as u64),
    };
    let direct = load_batch(&*items, first, 0, &pipeline).unwrap();
    let mut rng = SeededRng::for_item(3, 2);
    let third = train.apply(&load_rgb(&items[first[2]].0).unwrap(), &mut rng);
    let flat = Vec::<f32>::try_from(&direct.images.flatten(0, -1)).unwrap();
    let per = 3 * size * size;
    c.check(flat[2 * per..3 * per] == third[..], || {
        "train item 2 does not use the draws of position 2".into()
    });
    c.check(a[0] == flat, || {
        "prefetched first batch differs from load_batch".into()
    });
    c.check(
        ordered_batches(&order, 5, false).unwrap().len() == n.div_ceil(5),
        || "drop_last=false lost the short batch".into(),
    );
    // Fewer items than a batch: Dassl keeps them as the single batch of the epoch.
    let few = &order[..3];
    let kept = ordered_batches(few, 32, dassl_drop_last(few.len(), 32)).unwrap();
    c.check(kept == vec![few.to_vec()], || {
        format!("few-shot epoch batches {kept:?}")
    });
    let full = ordered_batches(&order, 8, dassl_drop_last(n, 8)).unwrap();
    c.check(
        full.len() == n / 8 && full.iter().all(|b| b.len() == 8),
        || format!("Dassl drop_last kept {} batches", full.len()),
    );

    // A broken file fails its batch with an error naming it, and ends the pass.
    let mut broken = (*items).clone();
    broken.insert(1, (img_dir.join("truncated.jpg"), 0));
    let results: Vec<_> = Prefetch::test(Arc::new(broken), 2, test).unwrap().collect();
    c.check(results.len() == 1, || {
        format!("pass went on after an error: {} results", results.len())
    });
    match &results[0] {
        Err(e) => c.check(e.to_string().contains("truncated.jpg"), || {
            format!("loader error does not name the file: {e}")
        }),
        Ok(_) => c.failures.push("batch with a truncated JPEG loaded".into()),
    }
}

/// CPU time (user + system) of this process so far, in seconds, from /proc (Linux only).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Decode + test transform throughput on the 427x640 sample JPEGs (run with `--ignored`, in
/// release mode). Wall time depends on what else runs on the machine, so the CPU time per image
/// is printed too: `threads / cpu_per_image` is the rate on otherwise idle cores.
#[test]
#[ignore = "timing, run explicitly in release mode"]
fn throughput_decode_and_test_transform() {
    let dir = tempfile::tempdir().unwrap();
    run_oracle(dir.path());
    let photos = ["china.jpg", "flower.jpg"].map(|f| dir.path().join("images").join(f));
    let items: Vec<(PathBuf, i64)> = (0..600).map(|k| (photos[k % 2].clone(), 0)).collect();
    let items = Arc::new(items);
    let t = TestTransform::new(224).unwrap();
    let threads = rayon::current_num_threads();
    let (start, cpu0) = (std::time::Instant::now(), process_cpu_seconds());
    let mut count = 0;
    for batch in Prefetch::test(items.clone(), 100, t).unwrap() {
        count += batch.unwrap().indices.len();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds()
        .zip(cpu0)
        .map(|(b, a)| (b - a) / count as f64);
    println!(
        "loader, decode+test transform: {count} images in {secs:.2} s wall = {:.0} images/s on {threads} threads",
        count as f64 / secs
    );
    if let Some(cpu) = cpu {
        println!(
            "  CPU time {:.2} ms per image -> {:.0} images/s on {threads} idle cores",
            cpu * 1e3,
            threads as f64 / cpu
        );
    }
    let n = 200;
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_secs_f64() / n as f64 * 1e3
    };
    let decode = time(&mut || {
        std::hint::black_box(load_rgb(&photos[0]).unwrap());
    });
    let img = load_rgb(&photos[0]).unwrap();
    let resize = time(&mut || {
        std::hint::black_box(t.resize_crop(&img));
    });
    let small = t.resize_crop(&img);
    let mut out = vec![0.0; 3 * 224 * 224];
    let normalize = time(&mut || {
        subpt_trainer::data::transforms::Normalize::CLIP.write_chw(&small, false, &mut out);
        std::hint::black_box(&out);
    });
    println!("  one thread, per image: decode {decode:.2} ms, resize+crop {resize:.2} ms, normalize {normalize:.2} ms");
}

//! Our few-shot draw against an independent Python implementation of Dassl's procedure on
//! CPython's `random` (tests/oracle/fewshot_oracle.py), over layouts x K x seeds.
use crate::common;

use serde_json::{json, Value};
use std::path::Path;
use subpt_trainer::data::fewshot::draw_fewshot;
use subpt_trainer::data::{DatasetName, DatasetSplits, Item, PyRandom};

struct Layout {
    name: &'static str,
    dataset: DatasetName,
    train_counts: Vec<usize>,
    val_counts: Vec<usize>,
}

/// Items of `counts[c]` per class, interleaved by a fixed shuffle and with labels permuted so
/// that first appearance differs from label order.
fn items(tag: &str, counts: &[usize], seed: u64) -> Vec<Item> {
    let n = counts.len();
    let mut out = Vec::new();
    for (c, &k) in counts.iter().enumerate() {
        let label = (c * 7 + 3) % n;
        for i in 0..k {
            let rel = format!("{tag}/c{label}/{i:03}.jpg");
            out.push(Item::new(
                Path::new("/data"),
                &rel,
                label,
                &format!("class {label}"),
            ));
        }
    }
    PyRandom::new(seed).shuffle(&mut out);
    out
}

fn layouts() -> Vec<Layout> {
    vec![
        // Small groups: some below every K, the pool branch everywhere.
        Layout {
            name: "small",
            dataset: DatasetName::Dtd,
            train_counts: vec![1, 2, 3, 5, 8, 13, 4, 16],
            val_counts: vec![1, 4, 6, 2, 3, 5, 4, 1],
        },
        // Around both setsize limits: 21 (K <= 5) and 85 (K = 8, 16) -> both branches.
        Layout {
            name: "boundaries",
            dataset: DatasetName::Food101,
            train_counts: vec![2, 17, 21, 22, 40, 85, 86, 120, 3, 30, 64, 200, 7],
            val_counts: vec![3, 22, 5, 21, 9, 1, 30, 4, 2, 8, 50, 6, 12],
        },
        // ImageNet: val is not sampled.
        Layout {
            name: "imagenet",
            dataset: DatasetName::ImageNet,
            train_counts: vec![30, 45, 12, 90, 23, 50, 1, 16, 33, 8, 60],
            val_counts: vec![5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
        },
    ]
}

fn entries(items: &[Item]) -> Value {
    items
        .iter()
        .map(|i| json!([i.relpath, i.label, i.classname]))
        .collect()
}

fn rels(items: &[Item]) -> Value {
    items.iter().map(|i| json!(i.relpath)).collect()
}

#[test]
fn fewshot_draws_match_the_python_oracle() {
    let seeds: [u64; 6] = [0, 1, 2, 3, 42, 1 << 40];
    let shots = [1usize, 2, 4, 8, 16];
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (li, layout) in layouts().iter().enumerate() {
        let train = items("train", &layout.train_counts, 10 + li as u64);
        let val = items("val", &layout.val_counts, 20 + li as u64);
        let splits =
            DatasetSplits::from_lists(train, val, Vec::new(), Path::new(layout.name)).unwrap();
        for &k in &shots {
            for &seed in &seeds {
                let sample_val = layout.dataset != DatasetName::ImageNet;
                cases.push(json!({
                    "seed": seed, "shots": k, "sample_val": sample_val,
                    "train": entries(&splits.train), "val": entries(&splits.val),
                }));
                let sub = draw_fewshot(layout.dataset, &splits, k, seed).unwrap();
                // Few-shot counts per class are min(K, n) whatever the draw.
                for (label, &n) in layout.train_counts.iter().enumerate() {
                    let l = (label * 7 + 3) % layout.train_counts.len();
                    let got = sub.train.iter().filter(|i| i.label == l).count();
                    assert_eq!(got, n.min(k), "{} K={k} seed={seed} label {l}", layout.name);
                }
                ours.push((layout.name, k, seed, sub));
            }
        }
    }
    assert!(cases.len() >= 50);
    let expected = common::run_json("fewshot_oracle.py", &json!(cases));
    for (i, (name, k, seed, sub)) in ours.iter().enumerate() {
        assert_eq!(
            rels(&sub.train),
            expected[i]["train"],
            "{name} K={k} seed={seed}: train"
        );
        let val = sub.val.as_deref().map_or(Value::Null, rels);
        assert_eq!(val, expected[i]["val"], "{name} K={k} seed={seed}: val");
    }
}

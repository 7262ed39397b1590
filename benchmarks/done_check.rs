//! What a rerun's done-check costs on an ImageNet-sized dataset: the time to compute every
//! cell's current identity (the dataset listing, the few-shot draws, and the digest of every
//! image a cell reads), the first time (every image read and hashed) and again in a new process
//! (every image found in the digest index by its stat). See benchmarks/README.md.
//!
//!   cargo bench -p subpt-bench --bench done_check -- [--classes 1000] [--train 1300] [--val 50]
//!
//! The tree (ImageNet's folder layout, one small distinct file per image) is generated once
//! under the bench's target directory and reused.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use subpt_bench::grid::{Grid, PathOverrides};
use subpt_trainer::engine::inputs::{DataMemo, Identity};

struct Args {
    classes: usize,
    train: usize,
    val: usize,
    phase: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        classes: 1000,
        train: 1300,
        val: 50,
        phase: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{k} takes a number"))
        };
        match k.as_str() {
            "--classes" => a.classes = num(),
            "--train" => a.train = num(),
            "--val" => a.val = num(),
            "--phase" => a.phase = it.next(),
            // cargo bench passes --bench.
            _ => {}
        }
    }
    a
}

fn wnid(c: usize) -> String {
    format!("n{c:08}")
}

/// The dataset tree and a grid over it, made unless the marker says this size exists.
fn generate(root: &Path, a: &Args) -> PathBuf {
    use rayon::prelude::*;
    let data = root.join("data/imagenet");
    let marker = root.join(format!("made-{}-{}-{}", a.classes, a.train, a.val));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(&data).unwrap();
        let names: String = (0..a.classes)
            .map(|c| format!("{} class {c}\n", wnid(c)))
            .collect();
        std::fs::write(data.join("classnames.txt"), names).unwrap();
        let t = Instant::now();
        (0..a.classes).into_par_iter().for_each(|c| {
            for (split, n) in [("train", a.train), ("val", a.val)] {
                let dir = data.join("images").join(split).join(wnid(c));
                std::fs::create_dir_all(&dir).unwrap();
                for i in 0..n {
                    let f = dir.join(format!("{}_{i}.JPEG", wnid(c)));
                    std::fs::write(f, format!("{split} {c} {i}").repeat(4)).unwrap();
                }
            }
        });
        // Stands in for a weights file: its digest is part of every identity.
        std::fs::write(root.join("weights.safetensors"), vec![7u8; 100 << 20]).unwrap();
        println!(
            "generated {} files in {:.1} s",
            a.classes * (a.train + a.val),
            t.elapsed().as_secs_f64()
        );
        std::fs::write(&marker, b"").unwrap();
    }
    let grid = root.join("grid.yaml");
    std::fs::write(
        &grid,
        "name: done-check\nprotocols: [few_shot]\ndatasets: [imagenet]\n\
         shots: [1, 2, 4, 8, 16]\nseeds: [1, 2, 3]\nmethods: [zsclip, coop, coop_sub_nfl]\n\
         weights: weights.safetensors\ndata_root: data\noutput_dir: runs\ncache_dir: cache\n",
    )
    .unwrap();
    grid
}

/// One process's done-check: every cell's identity, as `execute::done_cells` computes it.
fn phase(grid: &Path, name: &str) {
    let t = Instant::now();
    let g = Grid::load(grid, &PathOverrides::default()).unwrap();
    g.use_digest_index();
    let loaded = t.elapsed().as_secs_f64();
    let mut memo = DataMemo::default();
    let mut first = None;
    for c in &g.cells {
        Identity::expected(&c.spec, &mut memo).unwrap();
        first.get_or_insert(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:>5}: {} cells, identities in {:.2} s (grid loaded {:.2} s, first identity \
         (listing + first draw) at {:.2} s)",
        g.cells.len(),
        t.elapsed().as_secs_f64(),
        loaded,
        first.unwrap_or_default()
    );
}

fn main() {
    let a = args();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("done-check");
    if let Some(p) = &a.phase {
        return phase(&root.join("grid.yaml"), p);
    }
    let grid = generate(&root, &a);
    let _ = std::fs::remove_dir_all(root.join("cache"));
    let me = std::env::current_exe().unwrap();
    for p in ["cold", "warm", "warm"] {
        let status = Command::new(&me).args(["--phase", p]).status().unwrap();
        assert!(status.success(), "phase {p} failed");
    }
    let ix = root.join("cache").join(subpt_trainer::digest::INDEX_FILE);
    println!(
        "digest index: {} ({} bytes)",
        ix.display(),
        std::fs::metadata(&ix).map_or(0, |m| m.len())
    );
    let _ = grid;
}

use super::*;
use std::collections::HashSet;
use std::path::PathBuf;
use subpt_trainer::data::{DatasetName, SubsampleClasses};
use subpt_trainer::engine::spec::Method;

mod dry_run;

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn load(name: &str) -> Grid {
    Grid::load(&configs().join(name), &Default::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const MINIMAL: &str = "\
name: t
protocols: [few_shot]
datasets: [eurosat, dtd]
shots: [1, 4]
seeds: [1]
methods: [coop, coop_sub]
weights: w.pt
data_root: data
output_dir: out
";

/// The cells that train or evaluate (not the feature cells ahead of them).
fn work(g: &Grid) -> impl Iterator<Item = &Cell> {
    g.cells.iter().filter(|c| c.kind != CellKind::Features)
}

/// A cell's dependencies other than its feature cell.
fn work_deps(c: &Cell) -> Vec<&String> {
    c.deps
        .iter()
        .filter(|d| !d.starts_with("features-"))
        .collect()
}

fn parse_err(text: &str) -> GridError {
    GridConfig::parse(text, Path::new("/g/grid.yaml")).expect_err("should not parse")
}

#[test]
fn parse_errors_name_file_key_and_line() {
    // (text, expected 1-based line, words the message must hold)
    let cases: Vec<(String, usize, Vec<&str>)> = vec![
        (format!("{MINIMAL}epoch: 3\n"), 10, vec!["epoch"]),
        (
            MINIMAL.replace("shots: [1, 4]", "shots: [1, four]"),
            4,
            vec!["shots"],
        ),
        (
            MINIMAL.replace("[eurosat, dtd]", "[eurosat,\n  cifar10]"),
            4,
            vec!["cifar10", "datasets"],
        ),
        (
            MINIMAL.replace("[coop, coop_sub]", "[coop, subpt]"),
            6,
            vec!["subpt", "methods", "coop_sub_nfl"],
        ),
        (
            MINIMAL.replace("[eurosat, dtd]", "[imagenet_r]"),
            3,
            vec!["imagenet_r", "domain_generalization"],
        ),
        (
            format!("{MINIMAL}overrides:\n  epochs: 2\n  subpt.rnak: [2, 5]\n"),
            12,
            vec!["overrides.subpt.rnak", "rnak", "early_epochs"],
        ),
        (
            format!("{MINIMAL}overrides:\n  subpt.rank: [2, five]\n"),
            11,
            vec!["overrides.subpt.rank", "run spec"],
        ),
        (
            MINIMAL.replace("[coop, coop_sub]", "\n  - coop\n  - zsclip\n  - cooop"),
            9,
            vec!["cooop", "methods"],
        ),
        (MINIMAL.replace("shots: [1, 4]\n", ""), 0, vec!["shots"]),
        // An override of an axis would collapse it (seeds [1] here, but any list).
        (
            format!("{MINIMAL}overrides:\n  epochs: 2\n  seed: 5\n"),
            12,
            vec!["overrides.seed", "`seeds:`"],
        ),
        // Class subsets are typed: a misspelt one fails at its line, naming the choices.
        (
            format!("{MINIMAL}overrides:\n  epochs: 2\n  eval_subsets: [[base, nwe]]\n"),
            12,
            vec!["overrides.eval_subsets", "nwe", "base"],
        ),
        (
            format!("{MINIMAL}overrides:\n  lr: [0.002, .nan]\n"),
            11,
            vec!["overrides.lr", ".nan", "not a finite number"],
        ),
        // A repeated key: the line of the repeat, at the top level and in a nested map.
        (
            format!("{MINIMAL}shots: [2]\n"),
            10,
            vec!["duplicate", "shots"],
        ),
        (
            format!("{MINIMAL}overrides:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n"),
            13,
            vec!["duplicate", "epochs"],
        ),
    ];
    for (text, line, words) in cases {
        let e = parse_err(&text);
        let msg = e.to_string();
        assert!(msg.starts_with("/g/grid.yaml"), "{msg}");
        for w in words {
            assert!(msg.contains(w), "`{w}` missing from: {msg}");
        }
        if line > 0 {
            assert_eq!(e.line(), Some(line), "{msg}");
            assert!(msg.contains(&format!(":{line}")), "{msg}");
        }
    }
}

#[test]
fn paths_resolve_against_the_file_and_home() {
    let cfg = GridConfig::parse(MINIMAL, Path::new("/g/grid.yaml")).unwrap();
    assert_eq!(cfg.data_root, PathBuf::from("/g/data"));
    assert_eq!(cfg.weights, vec![PathBuf::from("/g/w.pt")]);
    let full = GridConfig::load(&configs().join("full.yaml")).unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME set"));
    assert_eq!(full.weights, vec![home.join(".cache/clip/RN50.pt")]);
}

#[test]
fn full_grid_has_the_papers_cell_count() {
    let g = load("full.yaml");
    let (datasets, shots, seeds, learners, dg_targets) = (11, 5, 3, 4, 4);
    // Zero-shot CLIP is one cell per dataset and class subset, whatever the shots and seeds.
    let few_shot = datasets * shots * seeds * learners + datasets;
    let b2n = datasets * seeds * learners + datasets;
    // The DG model is the ImageNet 4-shot 50-epoch run, which the few-shot protocol
    // already trains (ImageNet always runs 50 epochs): only the evaluations are new.
    let dg_evals = (seeds * learners + 1) * dg_targets;
    // One feature cell per dataset: the 11 and the 4 DG targets.
    assert_eq!(
        g.cells.len(),
        few_shot + b2n + dg_evals + datasets + dg_targets
    );
    let count = |p: Protocol| work(&g).filter(|c| c.protocol == p).count();
    assert_eq!(count(Protocol::FewShot), few_shot);
    assert_eq!(count(Protocol::BaseToNovel), b2n);
    assert_eq!(count(Protocol::DomainGeneralization), dg_evals);
    let ids: HashSet<&str> = g.cells.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), g.cells.len(), "ids are unique");
    for c in &g.cells {
        if c.kind == CellKind::Train {
            assert_eq!(c.id, c.spec.hash());
        }
        assert_eq!(c.out_dir, g.output_dir.join(&c.id));
    }
}

#[test]
fn every_cell_waits_for_the_test_features_it_reads() {
    let g = load("full.yaml");
    for c in work(&g) {
        let features: Vec<&Cell> = c
            .deps
            .iter()
            .filter_map(|d| g.cell(d))
            .filter(|d| d.kind == CellKind::Features)
            .collect();
        assert_eq!(features.len(), 1, "{}", c.id);
        let f = &features[0].spec;
        assert_eq!(
            (&f.dataset, &f.root, &f.weights, f.precision, &f.cache_dir),
            (
                &c.spec.dataset,
                &c.spec.root,
                &c.spec.weights,
                c.spec.precision,
                &c.spec.cache_dir
            )
        );
        assert!(c
            .spec
            .eval_subsets
            .iter()
            .all(|e| f.eval_subsets.contains(e)));
        assert_eq!(features[0].id, features_id(f));
    }
    let imagenet = g
        .cells
        .iter()
        .find(|c| c.kind == CellKind::Features && c.spec.dataset == DatasetName::ImageNet)
        .unwrap();
    // Few-shot evaluates all classes, base-to-novel the two halves.
    assert_eq!(
        imagenet.spec.eval_subsets,
        [
            SubsampleClasses::All,
            SubsampleClasses::Base,
            SubsampleClasses::New
        ]
    );
    assert!(imagenet.deps.is_empty());
}

#[test]
fn protocol_presets_follow_the_paper() {
    let g = load("full.yaml");
    for c in g
        .cells
        .iter()
        .filter(|c| c.protocol == Protocol::BaseToNovel)
    {
        let s = &c.spec;
        let learns = s.method.learns();
        assert_eq!(
            (s.subsample, s.shots),
            (SubsampleClasses::Base, if learns { 4 } else { 0 })
        );
        assert_eq!(
            s.eval_subsets,
            [SubsampleClasses::Base, SubsampleClasses::New]
        );
        assert_eq!(
            s.epochs,
            match (learns, s.dataset) {
                (false, _) => 0,
                (true, DatasetName::ImageNet) => 50,
                (true, _) => 100,
            }
        );
        if let Some(sub) = &s.subpt {
            assert_eq!((sub.early_epochs, sub.rank), (30, 10));
        }
        assert_eq!(s.nfl.is_some(), s.method.uses_nfl());
        if let Some(n) = &s.nfl {
            assert_eq!(n.names.to_string(), "novel");
        }
    }
    for c in g.cells.iter().filter(|c| c.protocol == Protocol::FewShot) {
        if let Some(n) = &c.spec.nfl {
            assert_eq!(n.names.to_string(), "imagenet_100");
        }
    }
}

/// Every SubPT cell points at the stage-A cell that differs only in method and subpt.
fn assert_subpt_linked(g: &Grid) -> usize {
    let mut linked = 0;
    let subpt_training = g
        .cells
        .iter()
        .filter(|c| c.kind == CellKind::Train && c.spec.method.uses_subspace());
    for c in subpt_training {
        assert_eq!(work_deps(c).len(), 1, "{}", c.id);
        let src = g.cell(work_deps(c)[0]).expect("source in grid");
        assert_eq!(Some(src.spec.method), c.spec.method.trajectory_source());
        assert!(work_deps(src).is_empty() && src.spec.subpt.is_none());
        let mut same = c.spec.clone();
        same.method = src.spec.method;
        same.subpt = None;
        assert_eq!(same, src.spec, "source differs beyond method and subpt");
        let traj = c.spec.subpt.as_ref().unwrap().trajectory.clone();
        assert_eq!(traj, Some(src.out_dir.join("trajectory.safetensors")));
        linked += 1;
    }
    linked
}

#[test]
fn subpt_cells_depend_on_their_coop_source() {
    let g = load("full.yaml");
    let linked = assert_subpt_linked(&g);
    // coop_sub and coop_sub_nfl in every few-shot and base-to-novel setting.
    assert_eq!(linked, 2 * (11 * 5 * 3 + 11 * 3));
    for c in &g.cells {
        match &c.kind {
            CellKind::Train if c.spec.method.uses_subspace() => {}
            CellKind::Train => assert!(work_deps(c).is_empty()),
            CellKind::Features => assert!(c.deps.is_empty()),
            CellKind::Evaluate { model } => {
                assert_eq!(work_deps(c), vec![model]);
                let m = g.cell(model).unwrap();
                let (shots, epochs) = match m.spec.method.learns() {
                    true => (4, 50),
                    false => (0, 0),
                };
                assert_eq!(
                    (m.spec.dataset, m.spec.shots),
                    (DatasetName::ImageNet, shots)
                );
                assert_eq!(m.spec.epochs, epochs);
            }
        }
    }
}

#[test]
fn ablation_cells_share_one_trajectory() {
    for (file, axis) in [("ablation-rank.yaml", 6), ("ablation-early.yaml", 4)] {
        let g = load(file);
        assert_subpt_linked(&g);
        let settings = 11 * 3; // datasets x seeds, 16 shots
        let of = |m: Method| g.cells.iter().filter(|c| c.spec.method == m).count();
        assert_eq!(of(Method::Coop), settings, "{file}: CoOp trained once each");
        assert_eq!(of(Method::CoopNfl), settings, "{file}");
        assert_eq!(of(Method::CoopSub), settings * axis, "{file}");
        assert_eq!(of(Method::CoopSubNfl), settings * axis, "{file}");
        let mut per_source: std::collections::HashMap<&str, usize> = Default::default();
        let subpt = g.cells.iter().filter(|c| c.spec.method.uses_subspace());
        for c in subpt {
            *per_source.entry(work_deps(c)[0].as_str()).or_default() += 1;
        }
        assert_eq!(per_source.len(), 2 * settings, "{file}");
        assert!(per_source.values().all(|&n| n == axis), "{file}");
    }
}

#[test]
fn subpt_without_its_source_trains_its_own_early_stage() {
    let text = MINIMAL.replace("[coop, coop_sub]", "[coop_sub]");
    let cfg = GridConfig::parse(&text, Path::new("/g/grid.yaml")).unwrap();
    let g = expand(&cfg).unwrap();
    assert_eq!(work(&g).count(), 4);
    for c in work(&g) {
        assert!(work_deps(c).is_empty());
        assert_eq!(c.spec.subpt.as_ref().unwrap().trajectory, None);
    }
    // The same cell with a source to reuse costs less by the early stage.
    let linked = expand(&GridConfig::parse(MINIMAL, Path::new("/g/grid.yaml")).unwrap()).unwrap();
    let own = g
        .cells
        .iter()
        .find(|c| c.spec.dataset == DatasetName::Dtd && c.spec.shots == 4);
    let reuse = linked.cells.iter().find(|c| {
        c.spec.method == Method::CoopSub && c.spec.dataset == DatasetName::Dtd && c.spec.shots == 4
    });
    let (own, reuse) = (own.unwrap(), reuse.unwrap());
    let early = own.spec.subpt.as_ref().unwrap().early_epochs as f64;
    let epochs = own.spec.epochs as f64;
    let eval = 47.0;
    assert!(
        ((own.cost - eval) / (reuse.cost - eval) - (epochs + early) / epochs).abs() < 1e-12,
        "{} vs {}",
        own.cost,
        reuse.cost
    );
}

#[test]
fn order_puts_dependencies_first_and_cycles_are_caught() {
    for file in [
        "full.yaml",
        "fewshot.yaml",
        "base2new.yaml",
        "dg.yaml",
        "smoke.yaml",
    ] {
        let g = load(file);
        let mut done = HashSet::new();
        for c in &g.cells {
            assert!(c.deps.iter().all(|d| done.contains(d)), "{file}: {}", c.id);
            done.insert(c.id.clone());
        }
    }
    let g = load("smoke.yaml");
    let mut cells: Vec<Cell> = g.cells.iter().take(3).cloned().collect();
    cells[0].deps = vec![cells[2].id.clone()];
    cells[2].deps = vec![cells[1].id.clone()];
    cells[1].deps = vec![cells[0].id.clone()];
    assert!(matches!(
        topological_order("t", cells.clone()),
        Err(GridError::Cycle { .. })
    ));
    cells[1].deps = vec!["nowhere".into()];
    assert!(matches!(
        topological_order("t", cells),
        Err(GridError::Dangling { .. })
    ));
}

#[test]
fn cell_ids_do_not_depend_on_how_the_grid_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("sub")).unwrap();
    let file = d.path().join("g.yaml");
    std::fs::write(&file, MINIMAL).unwrap();
    let ids = |p: &Path| -> Vec<String> {
        let g = Grid::load(p, &Default::default()).unwrap();
        g.cells.into_iter().map(|c| c.id).collect()
    };
    let roundabout = d.path().join("sub/../g.yaml");
    assert_eq!(ids(&file), ids(&roundabout));
}

#[test]
fn smoke_overrides_apply_where_the_field_exists() {
    let g = load("smoke.yaml");
    // few-shot: 2 shots x 2 seeds x 5 learning methods and one zero-shot cell; base-to-novel:
    // 2 seeds x 5 and one zero-shot cell; the test features.
    assert_eq!(g.cells.len(), 2 * 2 * 5 + 1 + 2 * 5 + 1 + 1);
    // Absolute, with `..` folded: the same whatever path named the grid file.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("results/smoke/data");
    for c in work(&g) {
        assert_eq!(c.spec.epochs, if c.spec.method.learns() { 4 } else { 0 });
        assert_eq!(c.spec.root, root);
        assert_eq!(c.spec.subpt.is_some(), c.spec.method.uses_subspace());
        if let Some(s) = &c.spec.subpt {
            assert_eq!((s.rank, s.early_epochs), (2, 3));
        }
    }
    assert_subpt_linked(&g);
}

#[test]
fn dg_grid_models_and_evaluations() {
    let g = load("dg.yaml");
    let train: Vec<&Cell> = g
        .cells
        .iter()
        .filter(|c| c.kind == CellKind::Train)
        .collect();
    // 3 seeds x 4 learning methods and one zero-shot cell, each tested on 4 targets; one
    // feature cell per dataset.
    assert_eq!(train.len(), 3 * 4 + 1);
    assert_eq!(g.cells.len(), (3 * 4 + 1) * 5 + 5);
    let targets: HashSet<&str> = g
        .cells
        .iter()
        .filter(|c| matches!(c.kind, CellKind::Evaluate { .. }))
        .map(|c| c.spec.dataset.id())
        .collect();
    let want: HashSet<&str> = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"].into();
    assert_eq!(targets, want);
}

#[test]
fn demo_grid_tests_the_faded_model_on_every_other_look() {
    let g = load("demo.yaml");
    let evals: Vec<&Cell> = g
        .cells
        .iter()
        .filter(|c| matches!(c.kind, CellKind::Evaluate { .. }))
        .collect();
    // (Four learning methods (CoOp, SubPT+NFL, KgCoOp, ProGrad) x three seeds, and zero-shot
    // CLIP) x four targets (the plain drawing and three looks).
    assert_eq!(evals.len(), (4 * 3 + 1) * 4);
    for c in &evals {
        let CellKind::Evaluate { model } = &c.kind else {
            unreachable!()
        };
        let m = g.cells.iter().find(|m| &m.id == model).unwrap();
        let shots = if m.spec.method.learns() { 4 } else { 0 };
        assert_eq!((m.spec.dataset.id(), m.spec.shots), ("shapes_faded", shots));
        assert!(
            c.spec.dataset.id().starts_with("shapes") && c.spec.dataset.id() != "shapes_faded",
            "{}",
            c.spec.dataset
        );
        assert!(c.deps.contains(model));
        match c.spec.method {
            Method::Zsclip => assert!(c.spec.evaluate_context.is_none()),
            _ => assert_eq!(
                c.spec.evaluate_context.as_deref(),
                Some(m.out_dir.join("context.safetensors").as_path())
            ),
        }
    }
    // A source other than ImageNet needs its targets named.
    let text = "name: t\nprotocols: [domain_generalization]\nseeds: [1]\nmethods: [coop]\n\
                weights: w.pt\ndata_root: d\noutput_dir: o\ndg_source: fashion_mnist\n";
    let e = parse_err(text).to_string();
    assert!(
        e.contains("dg_targets") && e.contains("grid.yaml:8:"),
        "{e}"
    );
}

#[test]
fn early_stage_longer_than_the_shared_trajectory_is_refused() {
    // dtd at 1 shot trains 50 epochs: a 60-epoch early stage cannot come from that run.
    let text = format!("{MINIMAL}overrides:\n  subpt.early_epochs: [10, 60]\n");
    let cfg = GridConfig::parse(&text, Path::new("/g/grid.yaml")).unwrap();
    let e = expand(&cfg).expect_err("t_early 60 > 50 epochs");
    let msg = e.to_string();
    assert_eq!(e.line(), Some(11), "{msg}");
    assert!(
        msg.contains("t_early 60") && msg.contains("50 epochs"),
        "{msg}"
    );
    // Without a CoOp cell to reuse, the SubPT cell trains its own early stage: allowed.
    let alone = text.replace("[coop, coop_sub]", "[coop_sub]");
    let cfg = GridConfig::parse(&alone, Path::new("/g/grid.yaml")).unwrap();
    assert_eq!(work(&expand(&cfg).unwrap()).count(), 2 * 2 * 2);
}

#[test]
fn shot_counts_a_protocol_would_ignore_are_refused() {
    let b2n = "name: t\nprotocols: [base_to_novel]\ndatasets: [dtd]\nshots: [16]\nseeds: [1]\n\
        methods: [coop]\nweights: w.pt\ndata_root: data\noutput_dir: out\n";
    let e = GridConfig::parse(b2n, Path::new("/g/grid.yaml")).expect_err("16 shots ignored");
    let msg = e.to_string();
    assert!(
        msg.contains("shots") && msg.contains("ignored") && msg.contains("4 shots"),
        "{msg}"
    );
    // The protocol's own count, or a few_shot protocol beside it, is fine.
    GridConfig::parse(&b2n.replace("[16]", "[4]"), Path::new("/g/grid.yaml")).unwrap();
    let both = b2n.replace("[base_to_novel]", "[few_shot, base_to_novel]");
    GridConfig::parse(&both, Path::new("/g/grid.yaml")).unwrap();
}

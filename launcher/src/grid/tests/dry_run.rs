//! `--dry-run`: the cell list, what tells cells apart, time estimates and missing inputs.
use super::*;

#[test]
fn dry_run_lists_cells_dependencies_and_total() {
    let g = load("smoke.yaml");
    let text = dry_run(&g);
    assert!(
        text.contains("grid `smoke`") && text.contains("33 cells"),
        "{text}"
    );
    for c in &g.cells {
        let line = text
            .lines()
            .find(|l| {
                l.contains(&c.id)
                    && (c.kind == CellKind::Features
                        || l.contains(c.spec.method.to_string().as_str()))
            })
            .unwrap_or_else(|| panic!("no line for {}", c.id));
        for d in &c.deps {
            assert!(line.contains(d.as_str()), "{line}");
        }
    }
    let total = format!("total cost estimate: {:.0}", g.total_cost());
    assert!(text.contains(&total), "{text}");
    let sum: f64 = g.cells.iter().map(|c| c.cost).sum();
    assert!(sum > 0.0 && (g.total_cost() - sum).abs() < 1e-9);
    let listing = text.lines().filter(|l| {
        !l.starts_with("warning: ") && !l.starts_with("time estimate: ") && !l.starts_with("disk: ")
    });
    assert_eq!(listing.count(), g.cells.len() + 4);
    // What the grid writes, against the space there.
    let disk = text.lines().find(|l| l.starts_with("disk: ")).expect(&text);
    assert!(
        disk.contains("MB written under the output directory"),
        "{disk}"
    );
}

#[test]
fn dry_run_names_what_tells_cells_apart() {
    let text = format!(
        "{}overrides:\n  lr: [0.002, 0.01]\n",
        MINIMAL.replace("weights: w.pt", "weights: [a/w.pt, b/v.pt]")
    );
    let cfg = GridConfig::parse(&text, Path::new("/g/grid.yaml")).unwrap();
    let g = expand(&cfg).unwrap();
    let listing = dry_run(&g);
    for c in work(&g) {
        let line = listing.lines().find(|l| l.contains(&c.id)).unwrap();
        let stem = c.spec.weights.file_stem().unwrap().to_string_lossy();
        let want = format!("lr={} weights={stem}", c.spec.lr);
        assert!(line.contains(&want), "{want} not in: {line}");
    }
    // Nothing differs in the plain grid: no labels.
    let plain = expand(&GridConfig::parse(MINIMAL, Path::new("/g/grid.yaml")).unwrap()).unwrap();
    assert!(!dry_run(&plain).contains("weights="));
}

#[test]
fn dry_run_estimates_time_from_a_probe_then_from_results() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("g.yaml");
    std::fs::write(&path, MINIMAL.replace("w.pt", "w.safetensors")).unwrap();
    let g = Grid::load(&path, &Default::default()).unwrap();
    // No weights yet: nothing to probe, no estimate.
    assert!(dryrun::time_estimate(&g, &vec![false; g.cells.len()]).is_none());
    let t = subpt_trainer::clip::random_init::generate(
        &subpt_trainer::clip::random_init::Spec::tiny_vit(),
        0,
    );
    let named: Vec<(&str, &tch::Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
    tch::Tensor::write_safetensors(&named, d.path().join("w.safetensors")).unwrap();
    let probed = dryrun::time_estimate(&g, &vec![false; g.cells.len()]).unwrap();
    assert!(
        probed.contains("from a probe of") && probed.contains(" ranks"),
        "{probed}"
    );
    // A result and a feature record in the output directory calibrate the rates instead.
    let cell = work(&g).next().unwrap();
    let mut r: serde_json::Value = serde_json::json!({
        "spec": cell.spec, "spec_hash": cell.id, "accuracy": {}, "hm": null,
        "per_class_accuracy": {}, "test_size": {}, "train_size": 0, "curves": [],
        "subspace": null, "fewshot_source": "", "timings": {"total_s": 3600.0}, "versions": {}
    });
    let out = subpt_trainer::store::CellDir::of(&g.output_dir, &cell.id);
    out.write_json(subpt_trainer::store::RESULT, &r).unwrap();
    let f = g
        .cells
        .iter()
        .find(|c| c.kind == CellKind::Features)
        .unwrap();
    r = serde_json::json!({"spec": f.spec, "spec_hash": f.id, "sets": [], "seconds": 60.0});
    let fdir = subpt_trainer::store::CellDir::of(&g.output_dir, &f.id);
    fdir.write_json(subpt_trainer::store::FEATURES, &r).unwrap();
    let calibrated = dryrun::time_estimate(&g, &vec![false; g.cells.len()]).unwrap();
    assert!(
        calibrated.contains("calibrated on 1 result(s)"),
        "{calibrated}"
    );
    // That cell took an hour: the grid of 8 such cells takes hours.
    assert!(calibrated.contains(" h on 1 rank"), "{calibrated}");
}

#[test]
fn dry_run_warns_about_missing_weights_and_data() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("g.yaml");
    std::fs::write(&path, MINIMAL).unwrap();
    let g = Grid::load(&path, &Default::default()).unwrap();
    let text = dry_run(&g);
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{text}");
    assert!(
        warnings.iter().any(|w| w.contains("w.pt do not exist")),
        "{text}"
    );
    for ds in ["eurosat", "dtd"] {
        assert!(warnings
            .iter()
            .any(|w| w.contains(&format!("dataset {ds} is not under"))));
    }
    // With the inputs in place, no warnings.
    std::fs::write(d.path().join("w.pt"), b"").unwrap();
    for dir in ["eurosat", "dtd"] {
        std::fs::create_dir_all(d.path().join("data").join(dir)).unwrap();
    }
    assert!(!dry_run(&g).contains("warning: "));
}

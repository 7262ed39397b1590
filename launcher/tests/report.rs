//! `report`: tables, conventions and plots from synthetic run results.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use subpt_bench::report::collect::Scope;
use subpt_bench::report::{generate, reference};
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::Protocol;
use subpt_trainer::engine::result::{CurvePoint, RunResult};
use subpt_trainer::engine::spec::{Method, NflSpec, SubptSpec};
use subpt_trainer::methods::subspace::SubspaceSummary;

use crate::common;
use common::results::*;

/// Writes the whole synthetic benchmark and runs the report on it.
fn fixture() -> (tempfile::TempDir, PathBuf, subpt_bench::report::Summary) {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    // Few-shot: the average over datasets (62 and 75 -> 68.5) differs from the mean of
    // all five seeds pooled (67.2).
    // Seed 3 drew from a class with only 3 training images.
    for (seed, acc, fewest) in [(1, 60.0, 4), (2, 62.0, 4), (3, 64.0, 3)] {
        let mut r = fewshot("dtd", Method::Coop, 4, seed, acc);
        r.train_per_class = vec![4, fewest, 4];
        write(&res, &r);
    }
    for (seed, acc) in [(1, 70.0), (2, 80.0)] {
        write(&res, &fewshot("eurosat", Method::Coop, 4, seed, acc));
    }
    write(&res, &fewshot("dtd", Method::Zsclip, 4, 1, 50.0));
    write(&res, &fewshot("dtd", Method::Coop, 1, 1, 55.0));
    // Base-to-novel: dtd seeds (90, 30) and (70, 50) average to (80, 40), HM 53.33 (the
    // mean of per-seed HMs would be 51.67); eurosat (60, 60). Dataset average: base 70,
    // novel 50, HM 58.33, whereas the mean of the two HMs is 56.67.
    write(&res, &b2n("dtd", Method::Coop, 1, 90.0, 30.0));
    write(&res, &b2n("dtd", Method::Coop, 2, 70.0, 50.0));
    write(&res, &b2n("eurosat", Method::Coop, 1, 60.0, 60.0));
    // Domain generalisation: the source and one target.
    write(&res, &fewshot("imagenet", Method::Coop, 16, 1, 71.0));
    write(&res, &fewshot("imagenetv2", Method::Coop, 16, 1, 60.0));
    write(&res, &fewshot("imagenetv2", Method::Coop, 16, 2, 64.0));
    // Ablations: the paper's rank at 4 shots (10), rank 5, and an NFL weight of 0.5.
    for (seed, rank, acc) in [(1, 10, 66.0), (2, 10, 68.0), (1, 5, 61.0)] {
        let mut s = spec("dtd", Method::CoopSub, 4, seed);
        s.subpt = Some(SubptSpec {
            rank,
            ..subpt_trainer::engine::presets::subpt_spec(Protocol::FewShot, 4)
        });
        let mut r = result(s, &[(SubsampleClasses::All, acc)]);
        r.subspace = Some(SubspaceSummary {
            rank,
            points: 30,
            dimension: 8,
            explained_variance: vec![3.0, 1.0],
            explained_variance_ratio: vec![0.75, 0.25],
        });
        write(&res, &r);
    }
    let mut s = spec("dtd", Method::CoopNfl, 4, 1);
    s.nfl = Some(NflSpec {
        names: "imagenet_100".into(),
        lambda: 0.5,
    });
    write(&res, &result(s, &[(SubsampleClasses::All, 63.0)]));
    // Curves on one base-to-novel run.
    let mut r = b2n("food101", Method::Cocoop, 1, 75.0, 70.0);
    r.curves = (1..=3)
        .map(|e| CurvePoint {
            epoch: e,
            lr: 0.002,
            train_loss: 1.0,
            train_accuracy: 50.0,
            test: [
                (SubsampleClasses::Base, 60.0 + e as f64),
                (SubsampleClasses::New, 65.0),
            ]
            .into(),
        })
        .collect();
    write(&res, &r);
    // Invalid: not JSON; and a spec edited after the run (stale hash).
    let bad = res.join("broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("result.json"), "{ not json").unwrap();
    let mut stale = fewshot("dtd", Method::Coop, 4, 9, 99.0);
    stale.spec.epochs += 1;
    write(&res, &stale);

    // Reference files are named by their protocol: the shipped CoCoOp-protocol averages (no
    // runs of that protocol here), a SubPT-protocol file with an HM that does not match its
    // base and novel, and a file whose name is no protocol.
    let refdir = tmp.path().join("reference");
    std::fs::create_dir_all(&refdir).unwrap();
    let repo_ref = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let shipped = repo_ref.join("base_to_novel_cocoop.csv");
    std::fs::copy(&shipped, refdir.join("base_to_novel_cocoop.csv")).unwrap();
    std::fs::write(
        refdir.join("base_to_novel.csv"),
        "method,base,novel,hm,source\nX,80,60,70,made up\n",
    )
    .unwrap();
    std::fs::write(
        refdir.join("cocoop_b2n_vitb16.csv"),
        "method,base,novel\nX,1,2\n",
    )
    .unwrap();

    let out = tmp.path().join("report");
    let summary = generate(&res, &refdir, &out, &Scope::All).unwrap();
    (tmp, out, summary)
}

#[test]
fn report_tables_follow_the_conventions() {
    let (_tmp, out, summary) = fixture();
    assert_eq!(summary.runs, 18, "{:#?}", summary.warnings);
    let warn = summary.warnings.join("\n");
    assert!(
        warn.contains("broken/result.json") && warn.contains("not a run result"),
        "{warn}"
    );
    assert!(warn.contains("does not match the spec"), "{warn}");
    assert!(
        warn.contains("cocoop_b2n_vitb16.csv") && warn.contains("names no base-to-novel protocol"),
        "{warn}"
    );

    let fs = csv(&out.join("fewshot.csv"));
    let row = find(
        &fs,
        &[("dataset", "dtd"), ("shots", "4"), ("method", "coop")],
    );
    close(num(row, "mean"), 62.0);
    close(num(row, "std"), 2.0); // n - 1: deviations 2, 0, 2 -> sqrt(8 / 2)
    close(num(row, "seed 3"), 64.0);
    assert_eq!(row["n"], "3");
    let row = find(
        &fs,
        &[("dataset", "eurosat"), ("shots", "4"), ("method", "coop")],
    );
    close(num(row, "std"), 50f64.sqrt());
    assert_eq!(row["seed 3"], "");
    let zs = find(&fs, &[("dataset", "dtd"), ("method", "zsclip")]);
    assert_eq!(zs["std"], "", "one seed has no sample std");
    let avg = find(
        &fs,
        &[("dataset", "average"), ("shots", "4"), ("method", "coop")],
    );
    close(num(avg, "mean"), 68.5);
    assert_eq!(avg["n"], "2");
    // Non-paper SubPT / NFL settings get their own rows.
    let var = find(
        &fs,
        &[("dataset", "dtd"), ("method", "coop_sub [r=5 t=30]")],
    );
    close(num(var, "mean"), 61.0);
    close(
        num(
            find(&fs, &[("dataset", "dtd"), ("method", "coop_sub")]),
            "mean",
        ),
        67.0,
    );
    find(&fs, &[("dataset", "dtd"), ("method", "coop_nfl [λ=0.5]")]);
    // ImageNet is a few-shot dataset too; its shifted variants are not.
    find(&fs, &[("dataset", "imagenet")]);
    assert!(!fs.iter().any(|r| r["dataset"] == "imagenetv2"));

    let bn = csv(&out.join("base_to_novel.csv"));
    let a = find(&bn, &[("dataset", "dtd"), ("method", "coop")]);
    close(num(a, "base"), 80.0);
    close(num(a, "novel"), 40.0);
    close(num(a, "hm"), 160.0 / 3.0);
    let avg = find(&bn, &[("dataset", "average"), ("method", "coop")]);
    close(num(avg, "base"), 70.0);
    close(num(avg, "novel"), 50.0);
    close(num(avg, "hm"), 2.0 * 70.0 * 50.0 / 120.0);

    let dg = csv(&out.join("domain_generalisation.csv"));
    let src = find(&dg, &[("dataset", "imagenet")]);
    assert_eq!(src["role"], "source");
    let tgt = find(&dg, &[("dataset", "imagenetv2")]);
    assert_eq!(tgt["role"], "target");
    close(num(tgt, "mean"), 62.0);
    close(num(tgt, "std"), 8f64.sqrt());

    let ab = csv(&out.join("ablations.csv"));
    let r10 = find(&ab, &[("method", "coop_sub"), ("rank", "10")]);
    close(num(r10, "mean"), 67.0);
    assert_eq!(r10["early_epochs"], "30");
    close(
        num(find(&ab, &[("method", "coop_sub"), ("rank", "5")]), "mean"),
        61.0,
    );
    let nfl = find(&ab, &[("method", "coop_nfl")]);
    assert_eq!(nfl["lambda"], "0.5");
    assert!(!ab.iter().any(|r| r["method"] == "coop"));

    // Markdown carries the same rows and states the std convention.
    let md = std::fs::read_to_string(out.join("fewshot.md")).unwrap();
    assert!(
        md.contains("| dtd | 4 | 3 | coop | 3 | 62.00 | 2.00 | 60.00 | 62.00 | 64.00 |"),
        "{md}"
    );
    assert!(md.contains("n - 1"));
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(index.contains("Base-to-novel") && index.contains("broken/result.json"));
    assert!(
        index.contains("SubPT's protocol (`base_to_novel`: 4 shots; published with RN50)"),
        "{index}"
    );

    // Every table is also LaTeX, under the same stem.
    for t in [
        "fewshot",
        "base_to_novel",
        "reference_base_to_novel",
        "reference_base_to_novel_cocoop",
        "domain_generalisation",
        "ablations",
    ] {
        assert!(out.join(format!("{t}.csv")).exists(), "{t}.csv");
        let tex = std::fs::read_to_string(out.join(format!("{t}.tex"))).unwrap();
        assert!(
            tex.contains("\\toprule") && tex.contains(&format!("\\label{{tab:{t}}}")),
            "{tex}"
        );
        assert!(summary.written.contains(&out.join(format!("{t}.tex"))));
    }
}

#[test]
fn reference_hms_are_recomputed_and_mismatches_flagged() {
    let (_tmp, out, _) = fixture();
    // The shipped CoCoOp-protocol file: published rows only (no runs of that protocol here).
    let rows = csv(&out.join("reference_base_to_novel_cocoop.csv"));
    for m in [
        "CLIP",
        "CoOp",
        "CoCoOp",
        "ProGrad",
        "KgCoOp",
        "MaPLe",
        "PromptSRC",
    ] {
        let r = find(&rows, &[("origin", "published"), ("method", m)]);
        let (b, n) = (num(r, "base"), num(r, "novel"));
        close(num(r, "hm (recomputed)"), 2.0 * b * n / (b + n));
        assert_eq!(r["check"], "ok", "{r:?}");
    }
    assert!(rows.iter().all(|r| r["origin"] == "published"), "{rows:?}");
    // SubPT's protocol: its file's wrong HM is flagged, and our averages sit beside it.
    let rows = csv(&out.join("reference_base_to_novel.csv"));
    let wrong = find(&rows, &[("origin", "published")]);
    close(num(wrong, "hm (recomputed)"), 2.0 * 80.0 * 60.0 / 140.0);
    assert!(wrong["check"].starts_with("MISMATCH"), "{wrong:?}");
    let ours = find(
        &rows,
        &[("origin", "measured (16 shots)"), ("method", "coop")],
    );
    close(num(ours, "hm (recomputed)"), 2.0 * 70.0 * 50.0 / 120.0);

    // The shipped file itself holds the published averages with consistent HMs.
    let shipped = reference::read_reference(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/reference/base_to_novel_cocoop.csv"),
    )
    .unwrap();
    assert_eq!(shipped.len(), 7);
    for r in &shipped {
        let hm = 2.0 * r.base * r.novel / (r.base + r.novel);
        assert!(
            (r.hm.unwrap() - hm).abs() <= reference::HM_TOLERANCE,
            "{r:?}"
        );
        assert!(!r.source.is_empty(), "{r:?}");
    }
}

/// Parses every SVG in `dir` with Python's XML parser (failing on malformed XML or a
/// root other than `<svg>`) and returns each file's text elements, trimmed.
fn svg_texts(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let python = std::env::var("SUBPT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
    assert!(
        python.exists(),
        "no Python at {}: run `make test`",
        python.display()
    );
    let script = "import sys, json, pathlib, xml.etree.ElementTree as E\n\
        ns = '{http://www.w3.org/2000/svg}'\n\
        out = {}\n\
        for f in sorted(pathlib.Path(sys.argv[1]).iterdir()):\n    \
            root = E.parse(f).getroot()\n    \
            assert root.tag == ns + 'svg', f\n    \
            out[f.name] = [''.join(t.itertext()).strip() for t in root.iter(ns + 'text')]\n\
        print(json.dumps(out))";
    let o = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn plots_are_svg_with_their_series() {
    let (_tmp, out, _) = fixture();
    let texts = svg_texts(&out.join("plots"));
    let has = |file: &str, name: &str| {
        let t = texts
            .get(file)
            .unwrap_or_else(|| panic!("no {file} in {texts:?}"));
        assert!(t.iter().any(|x| x == name), "{name} not in {file}: {t:?}");
    };
    for name in [
        "coop",
        "zsclip",
        "coop_sub",
        "coop_sub [r=5 t=30]",
        "accuracy (%)",
    ] {
        has("fewshot_dtd.svg", name);
    }
    has("fewshot_eurosat.svg", "coop");
    has("fewshot_average.svg", "coop");
    // Curves: base and novel on panels of their own, seeds (or methods) in one legend.
    for file in [
        "curves_food101_16shot_cocoop_base.svg",
        "curves_compare_food101_16shot_base.svg",
    ] {
        has(file, "base classes");
        has(file, "novel classes");
    }
    has("curves_food101_16shot_cocoop_base.svg", "seed 1");
    has("curves_compare_food101_16shot_base.svg", "cocoop");
    has("pca_dtd.svg", "coop_sub 4-shot all seed 2");
    has("pca_dtd.svg", "coop_sub [r=5 t=30] 4-shot all seed 1");
    has("pca_dtd.svg", "explained variance ratio");
    // Curves only where runs recorded them; PCA only for SubPT runs.
    assert!(!texts.contains_key("curves_dtd_4shot_coop_all.svg"));
    assert!(!texts.contains_key("pca_eurosat.svg"));
    assert_eq!(texts.len(), 7, "{:?}", texts.keys());
    // Shot counts on the few-shot x axis are whole numbers (dtd has 1 and 4 shots).
    let fewshot = &texts["fewshot_dtd.svg"];
    for tick in ["1", "4"] {
        assert!(fewshot.iter().any(|t| t == tick), "{tick} in {fewshot:?}");
    }
    let fractional = |t: &String| t.parse::<f64>().is_ok_and(|v| v.fract() != 0.0);
    assert!(!fewshot.iter().any(fractional), "{fewshot:?}");
    // Explained-variance ticks (the labels with decimals) stay within [0, 1].
    let ratios: Vec<f64> = texts["pca_dtd.svg"]
        .iter()
        .filter(|t| t.contains('.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(ratios.len() >= 2, "{:?}", texts["pca_dtd.svg"]);
    assert!(ratios.iter().all(|r| (0.0..=1.0).contains(r)), "{ratios:?}");
}

#[test]
fn domain_generalisation_follows_the_evaluated_contexts() {
    // The embedded setting: fashion_mnist's 4-shot CoOp model evaluated on its noisy copy,
    // which is also a few-shot dataset of its own; zero-shot CLIP on both.
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let dir_of = |r: &RunResult| {
        res.join(format!(
            "{}_{}_{}_{}_{}",
            r.spec.dataset, r.spec.method, r.spec.shots, r.spec.subsample, r.spec_hash
        ))
    };
    let source = fewshot("fashion_mnist", Method::Coop, 4, 1, 84.0);
    write(&res, &source);
    for (target, acc) in [("fashion_mnist_noise", 60.0), ("fashion_mnist_blur", 75.0)] {
        let mut s = spec(target, Method::Coop, 4, 1);
        s.evaluate_context = Some(dir_of(&source).join("context.safetensors"));
        write(&res, &result(s, &[(SubsampleClasses::All, acc)]));
    }
    write(
        &res,
        &fewshot("fashion_mnist_noise", Method::Coop, 4, 1, 71.0),
    );
    write(
        &res,
        &fewshot("fashion_mnist_noise", Method::Zsclip, 4, 1, 67.0),
    );
    write(&res, &fewshot("fashion_mnist", Method::Zsclip, 4, 1, 84.4));
    // Zero-shot on a target nothing was trained on belongs to DG only.
    write(
        &res,
        &fewshot("fashion_mnist_blur", Method::Zsclip, 4, 1, 79.0),
    );
    let out = tmp.path().join("report");
    let summary =
        subpt_bench::report::generate(&res, &tmp.path().join("none"), &out, &Scope::All).unwrap();
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let dg = csv(&out.join("domain_generalisation.csv"));
    let row = |role: &str, dataset: &str, method: &str| {
        num(
            find(
                &dg,
                &[("role", role), ("dataset", dataset), ("method", method)],
            ),
            "mean",
        )
    };
    close(row("source", "fashion_mnist", "coop"), 84.0);
    close(row("source", "fashion_mnist", "zsclip"), 84.4);
    close(row("target", "fashion_mnist_noise", "coop"), 60.0);
    close(row("target", "fashion_mnist_noise", "zsclip"), 67.0);
    close(row("target", "fashion_mnist_blur", "coop"), 75.0);
    close(row("target", "fashion_mnist_blur", "zsclip"), 79.0);
    assert_eq!(dg.len(), 6, "{dg:?}");
    // Few-shot keeps the noisy copy's own training (not the evaluation of another model).
    let fs = csv(&out.join("fewshot.csv"));
    let noise = |m: &str| {
        num(
            find(&fs, &[("dataset", "fashion_mnist_noise"), ("method", m)]),
            "mean",
        )
    };
    close(noise("coop"), 71.0);
    close(noise("zsclip"), 67.0);
    assert!(!fs.iter().any(|r| r["dataset"] == "fashion_mnist_blur"));
}

#[test]
fn a_directory_without_results_is_an_error_not_empty_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    std::fs::create_dir_all(res.join("cell")).unwrap();
    std::fs::write(res.join("cell/result.json"), b"{}").unwrap();
    let e = subpt_bench::report::generate(
        &res,
        &tmp.path().join("none"),
        &tmp.path().join("r"),
        &Scope::All,
    )
    .expect_err("nothing to report");
    assert!(
        e.to_string().contains("no valid result.json") && e.to_string().contains("1 skipped"),
        "{e}"
    );
    assert!(!tmp.path().join("r").exists());
}

/// A report scoped to a grid leaves out the other results below the directory and names them.
#[test]
fn results_of_cells_outside_the_grid_are_left_out_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let keep = fewshot("dtd", Method::Coop, 4, 1, 60.0);
    let stale = fewshot("dtd", Method::Coop, 4, 2, 10.0);
    write(&res, &keep);
    write(&res, &stale);
    let dir_of = |r: &RunResult| {
        format!(
            "{}_{}_{}_{}_{}",
            r.spec.dataset, r.spec.method, r.spec.shots, r.spec.subsample, r.spec_hash
        )
    };
    let scope = Scope::Grid {
        name: "g".into(),
        ids: [dir_of(&keep)].into_iter().collect(),
        failed: Default::default(),
    };
    let out = tmp.path().join("r");
    let summary = generate(&res, &tmp.path().join("none"), &out, &scope).unwrap();
    assert_eq!(summary.runs, 1);
    assert_eq!(summary.left_out.len(), 1, "{:?}", summary.left_out);
    assert!(
        summary.left_out[0].contains("dtd coop 4-shot seed 2")
            && summary.left_out[0].contains("not a cell of grid `g`"),
        "{:?}",
        summary.left_out
    );
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(
        index.contains("## Left out") && index.contains("--all"),
        "{index}"
    );
    let rows = csv(&out.join("fewshot.csv"));
    assert_eq!(rows[0]["mean"], "60.0000");
}

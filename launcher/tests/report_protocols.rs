//! `report`: one base-to-novel table per protocol, published numbers beside the runs of their
//! own protocol only, LaTeX versions of the tables, and KgCoOp's and ProGrad's ablations.
use std::path::{Path, PathBuf};
use subpt_bench::report::collect::Scope;
use subpt_bench::report::generate;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::result::RunResult;
use subpt_trainer::engine::spec::Method;

use crate::common;
use common::results::*;

fn b2n_run(
    protocol: Protocol,
    dataset: &str,
    method: Method,
    shots: usize,
    seed: u64,
    base: f64,
    new: f64,
) -> RunResult {
    let spec = preset(
        protocol,
        dataset.parse().unwrap(),
        PathBuf::from("data"),
        method,
        shots,
        seed,
        PathBuf::from("models/w.safetensors"),
    )
    .reduced_to_what_it_reads();
    let mut r = result(
        spec,
        &[(SubsampleClasses::Base, base), (SubsampleClasses::New, new)],
    );
    r.hm = Some(2.0 * base * new / (base + new));
    r
}

fn hm(b: f64, n: f64) -> f64 {
    2.0 * b * n / (b + n)
}

/// SubPT's protocol (4 shots) and CoCoOp's (16 shots) in one results directory, with one
/// zero-shot CLIP run serving both (recorded under SubPT's, as a grid of both writes it).
/// CoCoOp's protocol: CoOp on DTD (90 ± 1, 30 ± 1) and EuroSAT (60, 60), whose averages (75,
/// 45) have an HM of 56.25, whereas the mean of the two datasets' HMs is 52.5.
fn two_protocols(res: &Path) {
    use Protocol::{BaseToNovel as Subpt, BaseToNovelCocoop as Cocoop};
    for seed in [1, 2] {
        write(
            res,
            &b2n_run(Subpt, "dtd", Method::Coop, 4, seed, 70.0, 50.0),
        );
        write(
            res,
            &b2n_run(Subpt, "dtd", Method::CoopSub, 4, seed, 69.0, 60.0),
        );
    }
    for (seed, d) in [(1, -1.0), (2, 0.0), (3, 1.0)] {
        let w = |r: RunResult| write(res, &r);
        w(b2n_run(
            Cocoop,
            "dtd",
            Method::Coop,
            16,
            seed,
            90.0 + d,
            30.0 + d,
        ));
        w(b2n_run(
            Cocoop,
            "eurosat",
            Method::Coop,
            16,
            seed,
            60.0,
            60.0,
        ));
        w(b2n_run(Cocoop, "dtd", Method::Cocoop, 16, seed, 80.0, 60.0));
        w(b2n_run(
            Cocoop,
            "eurosat",
            Method::Cocoop,
            16,
            seed,
            72.0,
            65.0,
        ));
    }
    for (dataset, base, new) in [("dtd", 70.0, 75.0), ("eurosat", 50.0, 70.0)] {
        let zs = b2n_run(Subpt, dataset, Method::Zsclip, 4, 1, base, new);
        assert_eq!((zs.spec.shots, zs.spec.seed), (0, 0));
        write(res, &zs);
    }
}

fn report(res: &Path, reference: &Path) -> (PathBuf, subpt_bench::report::Summary) {
    let out = res.parent().unwrap().join("report");
    let summary = generate(res, reference, &out, &Scope::All).unwrap();
    (out, summary)
}

fn shipped_reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference")
}

#[test]
fn base_to_novel_tables_never_mix_protocols() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    two_protocols(&res);
    // A SubPT-protocol reference file without a `novel` column is refused, not half read.
    let refdir = tmp.path().join("reference");
    std::fs::create_dir_all(&refdir).unwrap();
    std::fs::copy(
        shipped_reference().join("base_to_novel_cocoop.csv"),
        refdir.join("base_to_novel_cocoop.csv"),
    )
    .unwrap();
    std::fs::write(refdir.join("base_to_novel.csv"), "method,base\nX,1\n").unwrap();
    let (out, summary) = report(&res, &refdir);
    let warn = summary.warnings.join("\n");
    assert!(
        warn.contains("base_to_novel.csv") && warn.contains("lacks column `novel`"),
        "{warn}"
    );
    assert_eq!(summary.warnings.len(), 1, "{warn}");

    let subpt = csv(&out.join("base_to_novel.csv"));
    assert!(subpt
        .iter()
        .all(|r| ["0", "4"].contains(&r["shots"].as_str())));
    close(
        num(
            find(&subpt, &[("dataset", "dtd"), ("method", "coop")]),
            "hm",
        ),
        hm(70.0, 50.0),
    );
    find(&subpt, &[("dataset", "dtd"), ("method", "coop_sub")]);
    let cocoop = csv(&out.join("base_to_novel_cocoop.csv"));
    assert!(cocoop
        .iter()
        .all(|r| ["0", "16"].contains(&r["shots"].as_str())));
    find(&cocoop, &[("dataset", "eurosat"), ("method", "cocoop")]);
    // Zero-shot CLIP's one run is in both tables.
    for t in [&subpt, &cocoop] {
        let zs = find(t, &[("dataset", "dtd"), ("method", "zsclip")]);
        close(num(zs, "novel"), 75.0);
    }
    // Our average row: the HM of the dataset-averaged base and novel, not the mean of the
    // datasets' HMs.
    let avg = find(&cocoop, &[("dataset", "average"), ("method", "coop")]);
    close(num(avg, "base"), 75.0);
    close(num(avg, "novel"), 45.0);
    close(num(avg, "hm"), hm(75.0, 45.0));
    let mean_of_hms = (hm(90.0, 30.0) + hm(60.0, 60.0)) / 2.0;
    assert!((num(avg, "hm") - mean_of_hms).abs() > 1.0);

    // Titles name the protocol; the published averages are CoCoOp's protocol's only.
    let md = |name: &str| std::fs::read_to_string(out.join(format!("{name}.md"))).unwrap();
    assert!(md("base_to_novel").starts_with(
        "## Base-to-novel accuracy (%), SubPT's protocol (`base_to_novel`: 4 shots; published \
         with RN50)"
    ));
    assert!(md("base_to_novel_cocoop").starts_with(
        "## Base-to-novel accuracy (%), CoCoOp's protocol (`base_to_novel_cocoop`: 16 shots; \
         published with ViT-B/16)"
    ));
    assert!(
        md("base_to_novel").contains("No published averages of this protocol"),
        "{}",
        md("base_to_novel")
    );
    assert!(!out.join("reference_base_to_novel.csv").exists());
    let refs = csv(&out.join("reference_base_to_novel_cocoop.csv"));
    let ours = find(
        &refs,
        &[("origin", "measured (16 shots)"), ("method", "coop")],
    );
    close(num(ours, "hm (recomputed)"), hm(75.0, 45.0));
    assert!(
        refs.iter()
            .all(|r| r["origin"] == "published" || !r["origin"].contains("(4 shots)")),
        "{refs:?}"
    );
    find(&refs, &[("origin", "published"), ("method", "KgCoOp")]);
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    for name in [
        "base_to_novel",
        "base_to_novel_cocoop",
        "reference_base_to_novel_cocoop",
    ] {
        assert!(index.contains(&format!("- `{name}`: ")), "{index}");
    }
    assert!(md("fewshot").contains("`few_shot`; published with RN50"));
}

#[test]
fn latex_tables_are_ready_to_paste() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    two_protocols(&res);
    let (out, summary) = report(&res, &shipped_reference());
    for p in &summary.written {
        if p.extension().is_some_and(|x| x == "csv") {
            assert!(p.with_extension("tex").exists(), "no LaTeX for {p:?}");
        }
    }
    let tex = std::fs::read_to_string(out.join("base_to_novel_cocoop.tex")).unwrap();
    let caption = tex.lines().find(|l| l.starts_with("\\caption{")).unwrap();
    for part in [
        r"CoCoOp's protocol (\texttt{base\_to\_novel\_cocoop}: 16 shots; published with ViT-B/16)",
        r"Our runs: weights \texttt{w.safetensors}; 16 shots; seeds 1, 2, 3.",
        r"mean $\pm$ sample std over seeds",
    ] {
        assert!(caption.contains(part), "{part} not in {caption}");
    }
    let lines: Vec<&str> = tex.lines().collect();
    // Paper names, mean ± std, the best per dataset in bold: CoOp's base, zero-shot CLIP's
    // novel and HM on DTD.
    for row in [
        r"DTD & CoOp & \textbf{90.00 $\pm$ 1.00} & 30.00 $\pm$ 1.00 & 45.00 \\",
        r"DTD & CoCoOp & 80.00 $\pm$ 0.00 & 60.00 $\pm$ 0.00 & 68.57 \\",
        r"DTD & Zero-shot CLIP & 70.00 & \textbf{75.00} & \textbf{72.41} \\",
        r"Average & CoOp & 75.00 & 45.00 & 56.25 \\",
    ] {
        assert!(lines.contains(&row), "{row} not in\n{tex}");
    }
    assert!(tex.contains("\\begin{tabular}{llrrr}\n\\toprule\nDataset & Method & Base & Novel & HM \\\\\n\\midrule\n"));
    assert!(tex.ends_with("\\bottomrule\n\\end{tabular}\n\\end{table}\n"));
    // The comparison ranks ours against the published only over all 11 datasets: here ours
    // are over 2, and PromptSRC holds the bold.
    let refs = std::fs::read_to_string(out.join("reference_base_to_novel_cocoop.tex")).unwrap();
    assert!(
        refs.contains(r"published & PromptSRC & \textbf{84.26} & \textbf{76.10} & \textbf{79.97}"),
        "{refs}"
    );
    assert!(refs.contains(r"measured (16 shots) & CoOp & 75.00 & 45.00 & 56.25"));
    let fewshot = std::fs::read_to_string(out.join("fewshot.tex")).unwrap();
    assert!(
        fewshot.contains(r"\multicolumn{4}{c}{(no runs)}"),
        "{fewshot}"
    );
}

#[test]
fn kgcoop_and_prograd_settings_off_their_papers_get_rows_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    for seed in [1, 2] {
        write(&res, &fewshot("dtd", Method::Coop, 4, seed, 50.0));
        write(&res, &fewshot("dtd", Method::Kgcoop, 4, seed, 60.0));
        let mut w = fewshot("dtd", Method::Kgcoop, 4, seed, 70.0);
        w.spec.kg.as_mut().unwrap().weight = 2.0;
        w.spec_hash = w.spec.hash();
        write(&res, &w);
        // ProGrad's paper uses λ = 0.8 at 16 shots on DTD.
        write(&res, &fewshot("dtd", Method::Prograd, 16, seed, 65.0));
        let mut l = fewshot("dtd", Method::Prograd, 16, seed, 64.0);
        l.spec.prograd.as_mut().unwrap().lambda = 1.0;
        l.spec_hash = l.spec.hash();
        write(&res, &l);
    }
    let (out, summary) = report(&res, &tmp.path().join("none"));
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let fs = csv(&out.join("fewshot.csv"));
    for (method, mean) in [
        ("kgcoop", 60.0),
        ("kgcoop [W=2]", 70.0),
        ("prograd", 65.0),
        ("prograd [λ=1]", 64.0),
    ] {
        let r = find(&fs, &[("dataset", "dtd"), ("method", method)]);
        close(num(r, "mean"), mean);
        assert_eq!(r["n"], "2");
    }
    let ab = csv(&out.join("ablations.csv"));
    let kg = find(&ab, &[("method", "kgcoop"), ("kg_weight", "2")]);
    close(num(kg, "mean"), 70.0);
    find(&ab, &[("method", "kgcoop"), ("kg_weight", "8")]);
    find(&ab, &[("method", "prograd"), ("prograd_lambda", "0.8")]);
    assert!(ab.iter().all(|r| r["protocol"] == "few_shot"));
    // LaTeX: the ablation's row keeps its setting and is never the bold one, though higher.
    let tex = std::fs::read_to_string(out.join("fewshot.tex")).unwrap();
    assert!(
        tex.contains(r"DTD & 4 & KgCoOp & \textbf{60.00 $\pm$ 0.00} \\"),
        "{tex}"
    );
    assert!(
        tex.contains(r"DTD & 4 & KgCoOp [W=2] & 70.00 $\pm$ 0.00 \\"),
        "{tex}"
    );
    assert!(tex.contains(r"ProGrad [$\lambda$=1]"), "{tex}");
    // Only the settings some run has are columns: no SubPT run, so no r or t_early.
    let ab_tex = std::fs::read_to_string(out.join("ablations.tex")).unwrap();
    let header = ab_tex
        .lines()
        .find(|l| l.starts_with("Dataset & "))
        .unwrap();
    assert_eq!(
        header,
        r"Dataset & Protocol & Shots & Method & W (KgCoOp) & $\lambda$ (ProGrad) & Metric & Accuracy \\"
    );
}

//! Properties of the SVG itself: where ticks, legend entries and error bars end up.
use super::*;
use std::path::PathBuf;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::result::{CurvePoint, RunResult};
use subpt_trainer::engine::spec::{Method, RunSpec};
use subpt_trainer::methods::subspace::SubspaceSummary;

/// One SVG element: tag, attributes and, for `<text>`, its content.
#[derive(Debug)]
struct El {
    tag: String,
    attrs: BTreeMap<String, String>,
    text: String,
}

impl El {
    fn num(&self, k: &str) -> f64 {
        self.attrs[k].parse().unwrap()
    }
    fn points(&self) -> Vec<(f64, f64)> {
        self.attrs["points"]
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }
}

/// Enough of an XML reader for what plotters writes: one element per tag, attributes in
/// double quotes, text only inside `<text>`.
fn parse(svg: &str) -> Vec<El> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with(['/', '?', '!']) {
            continue;
        }
        let end = rest.find('>').unwrap();
        let head = &rest[..end];
        let tag = head.split([' ', '\n', '/']).next().unwrap().to_string();
        let parts: Vec<&str> = head[tag.len()..].split('"').collect();
        let attrs = parts
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].trim().trim_end_matches('=').to_string(), c[1].into()))
            .collect();
        let text = if tag == "text" {
            let close = rest.find("</text>").unwrap();
            rest[end + 1..close]
                .trim()
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        } else {
            String::new()
        };
        out.push(El { tag, attrs, text });
    }
    out
}

/// The plot areas: the unfilled black rectangles, as (left, top, right, bottom), left to right.
fn frames(els: &[El]) -> Vec<(f64, f64, f64, f64)> {
    let mut f: Vec<(f64, f64, f64, f64)> = els
        .iter()
        .filter(|e| e.tag == "rect" && e.attrs["fill"] == "none" && e.attrs["stroke"] == "#000000")
        .map(|f| {
            let (x, y) = (f.num("x"), f.num("y"));
            (x, y, x + f.num("width"), y + f.num("height"))
        })
        .collect();
    assert!(!f.is_empty(), "no plot area");
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}

/// The first (leftmost) plot area.
fn frame(els: &[El]) -> (f64, f64, f64, f64) {
    frames(els)[0]
}

fn texts(els: &[El]) -> impl Iterator<Item = &El> {
    els.iter().filter(|e| e.tag == "text")
}

/// Numeric labels under the plot area, left to right: the x tick labels.
fn x_ticks(els: &[El]) -> Vec<(f64, String)> {
    let (left, _, right, bottom) = frame(els);
    let mut t: Vec<(f64, String)> = texts(els)
        .filter(|t| t.num("y") > bottom && t.text.parse::<f64>().is_ok())
        .filter(|t| (left - 20.0..=right + 20.0).contains(&t.num("x")))
        .map(|t| (t.num("x"), t.text.clone()))
        .collect();
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    t
}

/// Numeric labels left of the plot area as (pixel y, value): the y tick labels.
fn y_ticks(els: &[El]) -> Vec<(f64, f64)> {
    let (left, ..) = frame(els);
    texts(els)
        .filter(|t| t.num("x") < left)
        .filter_map(|t| Some((t.num("y"), t.text.parse().ok()?)))
        .collect()
}

/// Maps a pixel row to a data value through the outermost y tick labels.
fn y_value(els: &[El]) -> impl Fn(f64) -> f64 {
    let mut t = y_ticks(els);
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ((p0, v0), (p1, v1)) = (t[0], t[t.len() - 1]);
    move |p| v0 + (p - p0) * (v1 - v0) / (p1 - p0)
}

/// Error bars: the six-point polylines cap, stem, cap. Returns (x, top, bottom) pixels.
fn error_bars(els: &[El]) -> Vec<(f64, f64, f64)> {
    els.iter()
        .filter(|e| e.tag == "polyline")
        .map(El::points)
        .filter(|p| {
            p.len() == 6
                && p[0].1 == p[1].1
                && p[1].1 == p[2].1
                && p[2].0 == p[3].0
                && p[3].1 == p[4].1
                && p[4].1 == p[5].1
        })
        .map(|p| (p[2].0, p[2].1, p[3].1))
        .collect()
}

fn spec(dataset: &str, method: Method, shots: usize, seed: u64) -> RunSpec {
    let w = PathBuf::from("w.safetensors");
    let dataset = dataset.parse().expect("a catalogue dataset");
    preset(
        Protocol::FewShot,
        dataset,
        PathBuf::from("d"),
        method,
        shots,
        seed,
        w,
    )
}

fn run(spec: RunSpec) -> Loaded {
    Loaded {
        path: PathBuf::from(format!("{}/{}", spec.dataset, spec.seed)),
        result: RunResult::new(spec),
        variant: String::new(),
    }
}

fn key(m: Method, shots: usize) -> MethodKey {
    MethodKey::of(&spec("dtd", m, shots, 1))
}

/// dtd: coop at 1-16 shots over three seeds (4 shots: 60, 62, 64, so mean 62, std 2),
/// zero-shot CLIP with one seed; dsb: coop at 4 shots only.
fn fewshot() -> FewShot {
    let mut fs = FewShot::default();
    for shots in [1, 2, 4, 8, 16] {
        let base = 50.0 + 3.0 * shots as f64;
        let seeds = (1..=3)
            .map(|s| (s, base + 2.0 * (s as f64 - 2.0)))
            .collect();
        fs.cells
            .insert(("dtd".into(), shots, key(Method::Coop, shots)), seeds);
        let zs = [(1, 48.0)].into();
        fs.cells
            .insert(("dtd".into(), shots, key(Method::Zsclip, shots)), zs);
    }
    fs.cells
        .insert(("dsb".into(), 4, key(Method::Coop, 4)), [(1, 70.0)].into());
    fs
}

fn plot<'a>(plots: &'a [Plot], file: &str) -> &'a str {
    let names: Vec<&str> = plots.iter().map(|p| p.file.as_str()).collect();
    let p = plots.iter().find(|p| p.file == file);
    &p.unwrap_or_else(|| panic!("no {file} in {names:?}")).svg
}

#[test]
fn fewshot_x_axis_is_log2_ticked_at_the_shot_counts() {
    let plots = fewshot_plots(&fewshot()).unwrap();
    for file in ["fewshot_dtd.svg", "fewshot_average.svg"] {
        let els = parse(plot(&plots, file));
        let ticks = x_ticks(&els);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1", "2", "4", "8", "16"], "{file}");
        // Doublings equally spaced is what makes the axis logarithmic.
        let gaps: Vec<f64> = ticks.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            gaps.iter().all(|g| (g - gaps[0]).abs() <= 1.0 && *g > 50.0),
            "{file}: {gaps:?}"
        );
    }
    let labels: Vec<String> = x_ticks(&parse(plot(&plots, "fewshot_dsb.svg")))
        .into_iter()
        .map(|t| t.1)
        .collect();
    assert_eq!(labels, ["4"]);
}

#[test]
fn fewshot_error_bars_are_the_sample_std_over_seeds() {
    let plots = fewshot_plots(&fewshot()).unwrap();
    let els = parse(plot(&plots, "fewshot_dtd.svg"));
    // Five multi-seed coop points; zero-shot CLIP has one seed, so no bar.
    let bars = error_bars(&els);
    assert_eq!(bars.len(), 5, "{bars:?}");
    let y = y_value(&els);
    let (_, top, bottom) = bars[2];
    let px = {
        let t = y_ticks(&els);
        let (a, b) = (t[0], t[t.len() - 1]);
        ((a.1 - b.1) / (a.0 - b.0)).abs()
    };
    // 4 shots: mean 62, std 2, one pixel of slack.
    assert!((y(top) - 64.0).abs() <= 1.5 * px, "{}", y(top));
    assert!((y(bottom) - 60.0).abs() <= 1.5 * px, "{}", y(bottom));
    // Averages over datasets carry no seed spread; one seed has none.
    assert!(error_bars(&parse(plot(&plots, "fewshot_average.svg"))).is_empty());
    assert!(error_bars(&parse(plot(&plots, "fewshot_dsb.svg"))).is_empty());
}

#[test]
fn accuracy_axes_are_percent_within_0_and_100_and_cover_the_bars() {
    let mut fs = FewShot::default();
    // Mean 98, std 3: the bar would reach 101.
    let seeds = [(1, 95.0), (2, 98.0), (3, 101.0)].into();
    fs.cells
        .insert(("d".into(), 2, key(Method::Coop, 2)), seeds);
    fs.cells
        .insert(("d".into(), 8, key(Method::Coop, 8)), [(1, 90.0)].into());
    let plots = fewshot_plots(&fs).unwrap();
    let els = parse(plot(&plots, "fewshot_d.svg"));
    let ys: Vec<f64> = y_ticks(&els).into_iter().map(|t| t.1).collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |a, v| (a.0.min(*v), a.1.max(*v)));
    assert_eq!(hi, 100.0, "{ys:?}");
    assert!(lo > 0.0 && lo < 90.0, "{ys:?}");
    assert!(ys.iter().all(|v| v.fract() == 0.0), "{ys:?}");
    let (_, top, _, bottom) = frame(&els);
    for (_, t, b) in error_bars(&els) {
        assert!(
            t >= top && b <= bottom,
            "bar {t}..{b} outside {top}..{bottom}"
        );
    }
}

fn subpt(dataset: &str, shots: usize, seed: u64, ratios: &[f64]) -> Loaded {
    let mut r = run(spec(dataset, Method::CoopSub, shots, seed));
    r.result.subspace = Some(SubspaceSummary {
        rank: ratios.len(),
        points: 30,
        dimension: 8,
        explained_variance: ratios.to_vec(),
        explained_variance_ratio: ratios.to_vec(),
    });
    r
}

#[test]
fn pca_axes_are_ratios_over_whole_components() {
    let runs = [
        subpt("dtd", 4, 1, &[0.75, 0.25]),
        subpt("dtd", 4, 2, &[0.5, 0.3, 0.15]),
        // Not SubPT: its summary is ignored.
        run(spec("dtd", Method::Coop, 4, 1)),
    ];
    let plots = pca_plots(&runs).unwrap();
    assert_eq!(plots.len(), 1);
    let els = parse(&plots[0].svg);
    let xs: Vec<String> = x_ticks(&els).into_iter().map(|t| t.1).collect();
    assert_eq!(xs, ["1", "2", "3"]);
    let ys: Vec<f64> = y_ticks(&els).into_iter().map(|t| t.1).collect();
    assert!(ys.iter().all(|v| (0.0..=1.0).contains(v)), "{ys:?}");
    assert!(ys.contains(&0.0) && ys.iter().any(|v| *v >= 0.75), "{ys:?}");
    let names: Vec<&str> = texts(&els).map(|t| t.text.as_str()).collect();
    assert!(names.contains(&"coop_sub 4-shot all seed 2"), "{names:?}");
}

/// Base-to-novel runs of coop (seeds 1, 2) and cocoop (seed 1) with curves.
fn curve_runs() -> Vec<Loaded> {
    let mut runs = Vec::new();
    for (m, seed) in [(Method::Coop, 1), (Method::Coop, 2), (Method::Cocoop, 1)] {
        let mut s = spec("eurosat", m, 16, seed);
        s.subsample = SubsampleClasses::Base;
        let mut r = run(s);
        r.result.curves = (1..=5)
            .map(|e| CurvePoint {
                epoch: e,
                lr: 0.002,
                train_loss: 1.0,
                train_accuracy: 50.0,
                test: [
                    (SubsampleClasses::Base, 60.0 + e as f64 + seed as f64),
                    (SubsampleClasses::New, 65.0 - seed as f64),
                ]
                .into(),
            })
            .collect();
        runs.push(r);
    }
    runs
}

/// Stroke colours and segment counts of the legend sample on the row of `name`.
fn legend_sample(els: &[El], name: &str) -> (BTreeSet<String>, usize) {
    let (.., right, _) = *frames(els).last().unwrap();
    let t = texts(els).find(|t| t.text == name).unwrap();
    let y = t.num("y");
    let segs: Vec<&El> = els
        .iter()
        .filter(|e| e.tag == "polyline" && e.points().iter().all(|p| p.0 > right && p.1 == y))
        .collect();
    let colours = segs.iter().map(|e| e.attrs["stroke"].clone()).collect();
    (colours, segs.len())
}

/// Zero-shot CLIP's run beside `curve_runs`: base 55 %, novel 70 %.
fn zero_shot_run() -> Loaded {
    let mut s = spec("eurosat", Method::Zsclip, 16, 1);
    s.subsample = SubsampleClasses::Base;
    let mut r = run(s);
    r.result.accuracy = [
        (SubsampleClasses::Base, 55.0),
        (SubsampleClasses::New, 70.0),
    ]
    .into();
    r
}

#[test]
fn curve_comparison_puts_subsets_on_panels_with_bands_and_zero_shot_lines() {
    let mut runs = curve_runs();
    runs.push(zero_shot_run());
    let plots = curve_plots(&runs).unwrap();
    let els = parse(plot(&plots, "curves_compare_eurosat_16shot_base.svg"));
    // Base and novel apart, side by side, at one height.
    let f = frames(&els);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f[0].2 < f[1].0 && f[0].1 == f[1].1 && f[0].3 == f[1].3,
        "{f:?}"
    );
    let names: BTreeSet<&str> = texts(&els).map(|t| t.text.as_str()).collect();
    for n in [
        "base classes",
        "novel classes",
        "coop",
        "cocoop",
        "zero-shot CLIP",
    ] {
        assert!(names.contains(n), "{n} not in {names:?}");
    }
    // Bands only where there are two seeds: coop, on each panel.
    let bands = els
        .iter()
        .filter(|e| e.tag == "polygon" && e.attrs["opacity"].parse::<f64>().unwrap() < 1.0)
        .count();
    assert_eq!(bands, 2);
    let (coop_c, coop_n) = legend_sample(&els, "coop");
    let (other_c, _) = legend_sample(&els, "cocoop");
    assert_ne!(coop_c, other_c, "one colour per method");
    assert_eq!(coop_n, 1, "methods are solid");
    // Zero-shot's reference: a dashed grey line across each panel at its accuracy there.
    let y = y_value(&els);
    for (panel, want) in f.iter().zip([55.0, 70.0]) {
        let (l, _, r, _) = *panel;
        let dashes: Vec<Vec<(f64, f64)>> = els
            .iter()
            .filter(|e| e.tag == "polyline" && e.attrs["stroke"] == "#3C3C3C")
            .map(El::points)
            .filter(|p| p.iter().all(|q| q.0 >= l - 1.0 && q.0 <= r + 1.0))
            .collect();
        assert!(dashes.len() > 3, "dashed: {dashes:?}");
        for d in &dashes {
            assert!(
                d.iter().all(|q| (y(q.1) - want).abs() < 0.5),
                "{d:?} vs {want}"
            );
        }
    }
    let xs: Vec<String> = x_ticks(&els).into_iter().map(|t| t.1).collect();
    assert_eq!(xs, ["1", "2", "3", "4", "5"]);

    let per_seed = parse(plot(&plots, "curves_eurosat_16shot_coop_base.svg"));
    assert_eq!(frames(&per_seed).len(), 2);
    let names: BTreeSet<&str> = texts(&per_seed).map(|t| t.text.as_str()).collect();
    assert!(
        names.contains("seed 1") && names.contains("seed 2"),
        "{names:?}"
    );
    assert_eq!(plots.len(), 3, "compare + one per learning method");
}

#[test]
fn legends_lie_right_of_the_plot_area() {
    let mut runs = curve_runs();
    runs.push(subpt("dtd", 4, 1, &[0.75, 0.25]));
    let mut plots = fewshot_plots(&fewshot()).unwrap();
    plots.extend(curve_plots(&runs).unwrap());
    plots.extend(pca_plots(&runs).unwrap());
    let expect: BTreeMap<&str, &[&str]> = [
        ("fewshot_dtd.svg", &["zsclip", "coop"][..]),
        ("fewshot_average.svg", &["zsclip", "coop"][..]),
        (
            "curves_compare_eurosat_16shot_base.svg",
            &["coop", "cocoop"][..],
        ),
        (
            "curves_eurosat_16shot_coop_base.svg",
            &["seed 1", "seed 2"][..],
        ),
        ("pca_dtd.svg", &["coop_sub 4-shot all seed 1"][..]),
    ]
    .into();
    for p in &plots {
        let els = parse(&p.svg);
        let f = frames(&els);
        let (left, top, _, bottom) = f[0];
        let right = f.last().unwrap().2;
        let width: f64 = els[0].num("width");
        let mut legend = BTreeSet::new();
        for t in texts(&els) {
            let (x, y) = (t.num("x"), t.num("y"));
            let beside = y >= top && y <= bottom;
            let y_desc = t.attrs.contains_key("transform");
            // Tick labels are numbers (left of each panel); everything else level with the
            // plot areas is legend.
            if !beside || y_desc || t.text.parse::<f64>().is_ok() {
                continue;
            }
            // Anything else level with the plot area is legend, and must start past it.
            assert!(
                x > right && x < width,
                "{}: {:?} at {x}, plots {left}..{right}",
                p.file,
                t.text
            );
            assert_eq!(t.attrs["text-anchor"], "start", "{}", p.file);
            legend.insert(t.text.as_str());
        }
        for name in expect.get(p.file.as_str()).copied().unwrap_or_default() {
            assert!(
                legend.contains(name),
                "{}: {name} not in {legend:?}",
                p.file
            );
        }
    }
}

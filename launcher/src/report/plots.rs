//! SVG line charts: accuracy against shots, test accuracy over epochs, PCA spectra.
use super::collect::Loaded;
use super::fewshot::FewShot;
use super::label::MethodKey;
use super::stats::mean;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// A named line of (x, y) points.
pub type Series = (String, Points);
pub type Points = Vec<(f64, f64)>;

/// One chart to write: file name (under `plots/`) and its SVG text.
pub struct Plot {
    pub file: String,
    pub svg: String,
}

/// Draws `series` as lines with point markers and a legend naming each.
pub fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<String, String> {
    let (xr, yr) = ranges(series);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(e)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(e)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// Axis ranges covering every point with a margin, never empty.
fn ranges(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let pad = |lo: f64, hi: f64| {
        if lo > hi {
            (0.0, 1.0)
        } else {
            let m = ((hi - lo) * 0.05).max(0.5);
            (lo - m, hi + m)
        }
    };
    (pad(x0, x1), pad(y0, y1))
}

/// Keeps letters, digits, `-` and `_` so names from specs make safe file names.
pub fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Accuracy against shots: one chart per dataset and one for the dataset average, one
/// line per method.
pub fn fewshot_plots(fs: &FewShot) -> Result<Vec<Plot>, String> {
    let mut by_dataset: BTreeMap<&str, BTreeMap<MethodKey, Points>> = BTreeMap::new();
    for ((dataset, shots, m), seeds) in &fs.cells {
        let v: Vec<f64> = seeds.values().copied().collect();
        if let Some(y) = mean(&v) {
            let line = by_dataset
                .entry(dataset)
                .or_default()
                .entry(m.clone())
                .or_default();
            line.push((*shots as f64, y));
        }
    }
    let mut avg: BTreeMap<MethodKey, Points> = BTreeMap::new();
    for ((shots, m), (y, _)) in fs.averages() {
        avg.entry(m).or_default().push((shots as f64, y));
    }
    let mut out = Vec::new();
    let mut chart = |file: String, title: String, lines: BTreeMap<MethodKey, Points>| {
        let series: Vec<Series> = lines.into_iter().map(|(m, p)| (m.label(), p)).collect();
        let svg = line_chart(&title, "shots per class", "accuracy (%)", &series)?;
        out.push(Plot { file, svg });
        Ok::<(), String>(())
    };
    for (dataset, lines) in by_dataset {
        chart(
            format!("fewshot_{}.svg", file_stem(dataset)),
            format!("Few-shot accuracy: {dataset}"),
            lines,
        )?;
    }
    if !avg.is_empty() {
        chart(
            "fewshot_average.svg".into(),
            "Few-shot accuracy: average over datasets".into(),
            avg,
        )?;
    }
    Ok(out)
}

/// Test accuracy per evaluated subset over epochs, for every cell whose runs recorded
/// curves; one line per (subset, seed).
pub fn curve_plots(runs: &[Loaded]) -> Result<Vec<Plot>, String> {
    type CellKey = (String, usize, MethodKey, String);
    let mut cells: BTreeMap<CellKey, BTreeMap<(String, u64), Points>> = BTreeMap::new();
    for r in runs {
        let s = &r.result.spec;
        let key = (
            s.dataset.clone(),
            s.shots,
            MethodKey::of(s),
            s.subsample.clone(),
        );
        for p in &r.result.curves {
            for (subset, acc) in &p.test {
                cells
                    .entry(key.clone())
                    .or_default()
                    .entry((subset.clone(), s.seed))
                    .or_default()
                    .push((p.epoch as f64, *acc));
            }
        }
    }
    let mut out = Vec::new();
    for ((dataset, shots, m, subsample), lines) in cells {
        let series: Vec<Series> = lines
            .into_iter()
            .map(|((subset, seed), pts)| (format!("{subset} seed {seed}"), pts))
            .collect();
        let title = format!(
            "{dataset}, {shots} shots, {}, trained on {subsample}",
            m.label()
        );
        let svg = line_chart(&title, "epoch", "test accuracy (%)", &series)?;
        let file = format!(
            "curves_{}_{shots}shot_{}_{}.svg",
            file_stem(&dataset),
            file_stem(&m.label()),
            file_stem(&subsample)
        );
        out.push(Plot { file, svg });
    }
    Ok(out)
}

/// Explained-variance ratio per principal component of each SubPT run, per dataset.
pub fn pca_plots(runs: &[Loaded]) -> Result<Vec<Plot>, String> {
    let mut by_dataset: BTreeMap<&str, Vec<Series>> = BTreeMap::new();
    for r in runs {
        let s = &r.result.spec;
        let Some(sub) = r
            .result
            .subspace
            .as_ref()
            .filter(|_| s.method.uses_subspace())
        else {
            continue;
        };
        let pts = sub
            .explained_variance_ratio
            .iter()
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64, *v))
            .collect();
        let name = format!(
            "{} {}-shot {} seed {}",
            MethodKey::of(s).label(),
            s.shots,
            s.subsample,
            s.seed
        );
        by_dataset.entry(&s.dataset).or_default().push((name, pts));
    }
    by_dataset
        .into_iter()
        .map(|(dataset, series)| {
            let title = format!("PCA of early prompt trajectories: {dataset}");
            let svg = line_chart(&title, "component", "explained variance ratio", &series)?;
            Ok(Plot {
                file: format!("pca_{}.svg", file_stem(dataset)),
                svg,
            })
        })
        .collect()
}

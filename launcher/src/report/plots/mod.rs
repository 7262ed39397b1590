//! SVG charts of the report: accuracy against shots, test accuracy over epochs, and the
//! PCA spectra of SubPT runs.
mod axis;
mod chart;
#[cfg(test)]
mod tests;

use self::axis::{integers, log2_counts, percent, unit_ratio};
use self::chart::{extent, render, Chart, Line, Marker, Panel, Point, Reference, Spread};
use super::collect::Loaded;
use super::fewshot::FewShot;
use super::label::MethodKey;
use super::stats::{mean, sample_std};
use std::collections::{BTreeMap, BTreeSet};

/// One chart to write: file name (under `plots/`) and its SVG text.
pub struct Plot {
    pub file: String,
    pub svg: String,
}

const BARS_NOTE: &str = "bars: ±1 sample std over seeds";
const BAND_NOTE: &str = "bands: ±1 sample std over seeds";

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

/// Mean over seeds, with the sample std from two seeds on.
fn point(x: f64, seeds: &BTreeMap<u64, f64>) -> Option<Point> {
    let v: Vec<f64> = seeds.values().copied().collect();
    Some(Point {
        x,
        y: mean(&v)?,
        err: sample_std(&v),
    })
}

/// Position of `k` in `all`, so that one method keeps its colour across charts.
fn index_of<T: Ord>(all: &BTreeSet<T>, k: &T) -> usize {
    all.range(..k).count()
}

fn note_if_spread(lines: &[Line], note: &str) -> Option<String> {
    let any = lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.err.is_some()));
    any.then(|| note.to_string())
}

/// Accuracy against shots per class: one chart per dataset (error bars over seeds) and
/// one for the average over datasets; one line per method.
pub fn fewshot_plots(fs: &FewShot) -> Result<Vec<Plot>, String> {
    let methods: BTreeSet<&MethodKey> = fs.cells.keys().map(|k| &k.2).collect();
    type Lines<'a> = BTreeMap<&'a MethodKey, Vec<(usize, Point)>>;
    let mut per_dataset: BTreeMap<&str, Lines> = BTreeMap::new();
    // Zero shots has no place on a log axis: zero-shot CLIP is a reference line.
    let reference = |m: &MethodKey, y: Option<f64>| y.map(|y| Reference { name: m.label(), y });
    let mut zero: BTreeMap<&str, Vec<Reference>> = BTreeMap::new();
    for ((dataset, shots, m), seeds) in &fs.cells {
        if *shots == 0 {
            let v: Vec<f64> = seeds.values().copied().collect();
            zero.entry(dataset)
                .or_default()
                .extend(reference(m, mean(&v)));
            per_dataset.entry(dataset).or_default();
            continue;
        }
        let Some(p) = point((*shots as f64).log2(), seeds) else {
            continue;
        };
        let line = per_dataset
            .entry(dataset)
            .or_default()
            .entry(m)
            .or_default();
        line.push((*shots, p));
    }
    let averages = fs.averages();
    let mut average: Lines = BTreeMap::new();
    let average_zero: Vec<Reference> = averages
        .iter()
        .filter(|((shots, _), _)| *shots == 0)
        .filter_map(|((_, m), (y, _))| reference(m, Some(*y)))
        .collect();
    for ((shots, m), (y, _)) in &averages {
        // Borrowed from `fs` like the per-dataset keys, so one closure draws both kinds.
        let Some(&m) = methods.get(m).filter(|_| *shots > 0) else {
            continue;
        };
        let x = (*shots as f64).log2();
        let p = Point {
            x,
            y: *y,
            err: None,
        };
        average.entry(m).or_default().push((*shots, p));
    }

    let chart = |title: String, lines: Lines, references: Vec<Reference>, average: bool| {
        let shots: Vec<usize> = lines.values().flatten().map(|(s, _)| *s).collect();
        let lines: Vec<Line> = lines
            .into_iter()
            .map(|(m, pts)| {
                let i = index_of(&methods, &m);
                Line {
                    name: m.label(),
                    colour: i,
                    marker: Marker::nth(i),
                    dashed: false,
                    points: pts.into_iter().map(|(_, p)| p).collect(),
                }
            })
            .collect();
        let note = if average {
            let n: BTreeSet<usize> = averages.values().map(|v| v.1).collect();
            let (lo, hi) = (n.first().copied(), n.last().copied());
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo == hi => Some(format!("mean over {hi} datasets")),
                // Points over fewer datasets are not comparable with the others.
                (Some(lo), Some(hi)) => Some(format!(
                    "mean over {lo}-{hi} datasets;\nn per point in fewshot.csv"
                )),
                _ => None,
            }
        } else {
            note_if_spread(&lines, BARS_NOTE)
        };
        let (x, y) = (
            log2_counts("shots per class", &shots),
            percent("accuracy (%)", extent(&lines, &references)),
        );
        render(&Chart {
            title,
            panels: vec![Panel {
                references,
                ..Panel::plain(x, y, lines)
            }],
            spread: Spread::Bars,
            note,
        })
    };
    let mut out = Vec::new();
    for (dataset, lines) in per_dataset {
        // Zero-shot alone has no shots axis to draw on.
        if lines.is_empty() {
            continue;
        }
        let refs = zero.remove(dataset).unwrap_or_default();
        out.push(Plot {
            file: format!("fewshot_{}.svg", file_stem(dataset)),
            svg: chart(format!("Few-shot accuracy: {dataset}"), lines, refs, false)?,
        });
    }
    if !average.is_empty() {
        out.push(Plot {
            file: "fewshot_average.svg".into(),
            svg: chart(
                "Few-shot accuracy: average over datasets".into(),
                average,
                average_zero,
                true,
            )?,
        });
    }
    Ok(out)
}

/// Per (method, evaluated subset): epoch -> seed -> test accuracy.
type Curves = BTreeMap<(MethodKey, String), BTreeMap<usize, BTreeMap<u64, f64>>>;

/// A panel of curves: its title, lines and reference lines.
type PanelLines = (String, Vec<Line>, Vec<Reference>);

/// (dataset, shots, subsample trained on): what a chart of curves covers.
type CellKey = (String, usize, String);

/// Test accuracy over epochs for runs that recorded curves. Per (dataset, shots,
/// subsample) one chart compares methods (mean over seeds, band of the std), one panel per
/// evaluated subset (base and novel apart), zero-shot CLIP's accuracy as a reference line;
/// per method one more shows every seed, since a mean can hide a seed that diverges.
pub fn curve_plots(runs: &[Loaded]) -> Result<Vec<Plot>, String> {
    let mut cells: BTreeMap<CellKey, Curves> = BTreeMap::new();
    // Zero-shot accuracy per cell and subset, over seeds (zero-shot runs train nothing).
    let mut zero_shot: BTreeMap<(CellKey, String), BTreeMap<u64, f64>> = BTreeMap::new();
    for r in runs {
        let s = &r.result.spec;
        let key = (s.dataset.to_string(), s.shots, s.subsample.to_string());
        if !s.method.learns() {
            // One zero-shot run (shots 0) serves every shot count of its dataset.
            let key = (s.dataset.to_string(), 0, s.subsample.to_string());
            for (subset, acc) in &r.result.accuracy {
                zero_shot
                    .entry((key.clone(), subset.to_string()))
                    .or_default()
                    .entry(s.seed)
                    .or_insert(*acc);
            }
        }
        for p in &r.result.curves {
            for (subset, acc) in &p.test {
                let by_epoch = cells
                    .entry(key.clone())
                    .or_default()
                    .entry((MethodKey::of_run(r), subset.to_string()))
                    .or_default();
                // Runs come sorted by path: the first of a repeated seed wins, as in tables.
                by_epoch
                    .entry(p.epoch)
                    .or_default()
                    .entry(s.seed)
                    .or_insert(*acc);
            }
        }
    }
    let methods: BTreeSet<MethodKey> = cells
        .values()
        .flat_map(|c| c.keys().map(|k| k.0.clone()))
        .collect();
    let mut out = Vec::new();
    for (cell, curves) in &cells {
        let (dataset, shots, subsample) = cell;
        let subsets: BTreeSet<&String> = curves.keys().map(|k| &k.1).collect();
        let references = |subset: &String| -> Vec<Reference> {
            let v: Vec<f64> = zero_shot
                .get(&((dataset.clone(), 0, subsample.clone()), subset.clone()))
                .map(|s| s.values().copied().collect())
                .unwrap_or_default();
            mean(&v)
                .map(|y| Reference {
                    name: "zero-shot CLIP".into(),
                    y,
                })
                .into_iter()
                .collect()
        };
        let panels: Vec<PanelLines> = subsets
            .iter()
            .map(|&subset| {
                let lines = curves
                    .iter()
                    .filter(|((_, s), _)| s == subset)
                    .map(|((m, _), by_epoch)| {
                        let i = index_of(&methods, m);
                        Line {
                            name: m.label(),
                            colour: i,
                            marker: Marker::nth(i),
                            dashed: false,
                            points: by_epoch
                                .iter()
                                .filter_map(|(e, seeds)| point(*e as f64, seeds))
                                .collect(),
                        }
                    })
                    .collect();
                (subset_title(subset), lines, references(subset))
            })
            .collect();
        let title = format!("{dataset}, {shots}-shot, trained on {subsample} classes");
        out.push(Plot {
            file: format!(
                "curves_compare_{}_{shots}shot_{}.svg",
                file_stem(dataset),
                file_stem(subsample)
            ),
            svg: curve_chart(title, panels, Some(BAND_NOTE))?,
        });

        let mut per_method: BTreeMap<&MethodKey, Vec<PanelLines>> = BTreeMap::new();
        for ((m, subset), by_epoch) in curves {
            let seeds: BTreeSet<u64> = curves
                .iter()
                .filter(|(k, _)| k.0 == *m)
                .flat_map(|(_, e)| e.values().flat_map(|s| s.keys().copied()))
                .collect();
            let lines = seeds
                .iter()
                .filter_map(|seed| {
                    let points: Vec<Point> = by_epoch
                        .iter()
                        .filter_map(|(e, s)| {
                            Some(Point {
                                x: *e as f64,
                                y: *s.get(seed)?,
                                err: None,
                            })
                        })
                        .collect();
                    let i = index_of(&seeds, seed);
                    (!points.is_empty()).then(|| Line {
                        name: format!("seed {seed}"),
                        colour: i,
                        marker: Marker::nth(i),
                        dashed: false,
                        points,
                    })
                })
                .collect();
            per_method.entry(m).or_default().push((
                subset_title(subset),
                lines,
                references(subset),
            ));
        }
        for (m, panels) in per_method {
            let title = format!(
                "{dataset}, {shots}-shot, {}, trained on {subsample} classes",
                m.label()
            );
            out.push(Plot {
                file: format!(
                    "curves_{}_{shots}shot_{}_{}.svg",
                    file_stem(dataset),
                    file_stem(&m.label()),
                    file_stem(subsample)
                ),
                svg: curve_chart(title, panels, None)?,
            });
        }
    }
    Ok(out)
}

/// The panel title of an evaluated class subset.
fn subset_title(subset: &str) -> String {
    match subset {
        "base" => "base classes".into(),
        "new" => "novel classes".into(),
        "all" => "all classes".into(),
        other => other.into(),
    }
}

/// Curves over epochs, one panel per (title, lines, references); panels share the epoch
/// range and, so that their heights compare, the accuracy range.
fn curve_chart(
    title: String,
    panels: Vec<PanelLines>,
    note: Option<&str>,
) -> Result<String, String> {
    let epochs = panels.iter().flat_map(|(_, lines, _)| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.x as usize))
    });
    let (lo, hi) = epochs.fold((usize::MAX, 0), |(lo, hi), e| (lo.min(e), hi.max(e)));
    let lo = lo.min(hi);
    let pad = ((hi - lo) as f64 * 0.03).max(0.5);
    let all_lines: Vec<&Line> = panels.iter().flat_map(|(_, l, _)| l).collect();
    let ext = panels
        .iter()
        .filter_map(|(_, lines, refs)| extent(lines, refs))
        .fold(None, |acc: Option<(f64, f64)>, (a, b)| {
            Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
        });
    let any_spread = all_lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.err.is_some()));
    let note = note.filter(|_| any_spread).map(str::to_string);
    let panels = panels
        .into_iter()
        .map(|(title, lines, references)| Panel {
            title,
            x: integers("epoch", lo, hi, pad, 8),
            y: percent("test accuracy (%)", ext),
            lines,
            references,
        })
        .collect();
    render(&Chart {
        title,
        panels,
        spread: Spread::Band,
        note,
    })
}

/// Explained-variance ratio per principal component of each SubPT run, per dataset.
pub fn pca_plots(runs: &[Loaded]) -> Result<Vec<Plot>, String> {
    type RunKey = (MethodKey, usize, String, u64);
    let mut by_dataset: BTreeMap<&str, BTreeMap<RunKey, Vec<f64>>> = BTreeMap::new();
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
        let key = (
            MethodKey::of_run(r),
            s.shots,
            s.subsample.to_string(),
            s.seed,
        );
        let ratios = by_dataset.entry(s.dataset.id()).or_default();
        ratios
            .entry(key)
            .or_insert_with(|| sub.explained_variance_ratio.clone());
    }
    let mut out = Vec::new();
    for (dataset, runs) in by_dataset {
        // Seeds of one setting share a colour and differ by marker, so the legend reads
        // as groups rather than as many unrelated lines.
        let settings: BTreeSet<(&MethodKey, usize, &str)> =
            runs.keys().map(|k| (&k.0, k.1, k.2.as_str())).collect();
        let lines: Vec<Line> = runs
            .iter()
            .map(|((m, shots, subsample, seed), ratios)| {
                let setting = index_of(&settings, &(m, *shots, subsample.as_str()));
                let nth_seed = runs
                    .keys()
                    .filter(|k| (&k.0, k.1, &k.2) == (m, *shots, subsample) && k.3 < *seed)
                    .count();
                Line {
                    name: format!("{} {shots}-shot {subsample} seed {seed}", m.label()),
                    colour: setting,
                    marker: Marker::nth(nth_seed),
                    dashed: false,
                    points: ratios
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(c, v)| Point {
                            x: (c + 1) as f64,
                            y: *v,
                            err: None,
                        })
                        .collect(),
                }
            })
            .collect();
        let components = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.x as usize))
            .max()
            .unwrap_or(1);
        let top = extent(&lines, &[]).map_or(1.0, |e| e.1);
        let (x, y) = (
            integers("principal component", 1, components.max(1), 0.5, 12),
            unit_ratio("explained variance ratio", top),
        );
        let svg = render(&Chart {
            title: format!("PCA of early prompt trajectories: {dataset}"),
            panels: vec![Panel::plain(x, y, lines)],
            spread: Spread::Bars,
            note: None,
        })?;
        out.push(Plot {
            file: format!("pca_{}.svg", file_stem(dataset)),
            svg,
        });
    }
    Ok(out)
}

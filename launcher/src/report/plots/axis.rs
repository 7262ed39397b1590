//! Axis ranges and ticks chosen from the data. Ticks are set explicitly rather than left
//! to plotters, whose automatic ticks put fractional labels on count axes and let ranges
//! run past the values a quantity can take.
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// One axis: what it shows, its range, and every tick position with its label.
#[derive(Debug, Clone)]
pub struct Axis {
    pub desc: String,
    pub range: (f64, f64),
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    pub fn positions(&self) -> Vec<f64> {
        self.ticks.iter().map(|t| t.0).collect()
    }

    /// The label of the tick at `v`; plotters asks only about the positions it was given.
    pub fn label_at(&self, v: f64) -> String {
        self.ticks
            .iter()
            .find(|t| (t.0 - v).abs() <= 1e-9 * (1.0 + v.abs()))
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// A linear coordinate whose grid lines and labels are exactly `ticks`.
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (lo, hi) = self.range;
        if hi <= lo {
            return (limit.0 + limit.1) / 2;
        }
        let t = (v - lo) / (hi - lo);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // No minor grid: the ticks are the only values worth a line.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.positions()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.0..self.range.1
    }
}

/// Counts on a log2 scale (the data are positioned at `log2(count)`), ticked at exactly
/// the counts given and labelled with them: shot counts double, so a linear axis would
/// crowd 1, 2 and 4 into the corner that matters most.
pub fn log2_counts(desc: &str, counts: &[usize]) -> Axis {
    let mut counts: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
    counts.sort_unstable();
    counts.dedup();
    let xs: Vec<f64> = counts.iter().map(|&c| (c as f64).log2()).collect();
    let (lo, hi) = match (xs.first(), xs.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => (0.0, 0.0),
    };
    // A third of a doubling keeps end markers and their error bar caps off the frame.
    let pad = if hi > lo { 0.3 } else { 0.5 };
    Axis {
        desc: desc.into(),
        range: (lo - pad, hi + pad),
        ticks: xs
            .into_iter()
            .zip(counts.iter().map(usize::to_string))
            .collect(),
    }
}

/// Integer quantities (epochs, component numbers): ticks only at whole numbers, thinned
/// to a 1-2-5 step giving at most about `max_ticks` labels.
pub fn integers(desc: &str, lo: usize, hi: usize, pad: f64, max_ticks: usize) -> Axis {
    let (lo, hi) = (lo.min(hi), hi.max(lo));
    let raw = (hi - lo) as f64 / max_ticks.saturating_sub(1).max(1) as f64;
    let step = (nice_step(raw).round() as usize).max(1);
    let first = lo.div_ceil(step) * step;
    let ticks = (first..=hi)
        .step_by(step)
        .map(|v| (v as f64, v.to_string()))
        .collect();
    Axis {
        desc: desc.into(),
        range: (lo as f64 - pad, hi as f64 + pad),
        ticks,
    }
}

const MIN_SPAN: f64 = 6.0;

/// Accuracy in percent over `[lo, hi]` of the data (error bars included), padded and
/// rounded out to whole ticks, never leaving [0, 100].
pub fn percent(desc: &str, extent: Option<(f64, f64)>) -> Axis {
    let (lo, hi) = extent.unwrap_or((0.0, 100.0));
    let (lo, hi) = (lo.clamp(0.0, 100.0), hi.clamp(0.0, 100.0));
    // At least a few points of span, so that one value or a flat line is not blown up
    // until seed noise looks like an effect.
    let pad = ((hi - lo) * 0.08)
        .max((MIN_SPAN - (hi - lo)) / 2.0)
        .max(1.0);
    let (lo, hi) = ((lo - pad).max(0.0), (hi + pad).min(100.0));
    // Whole-point steps: tenths of a percent are below what seeds can resolve.
    let step = nice_step((hi - lo) / 6.0).max(1.0);
    let lo = ((lo / step).floor() * step).max(0.0);
    let hi = ((hi / step).ceil() * step).min(100.0);
    stepped(desc, lo, hi, step)
}

/// A ratio in [0, 1] (explained variance), from 0 to just above `max`.
pub fn unit_ratio(desc: &str, max: f64) -> Axis {
    let top = (max.clamp(0.0, 1.0) * 1.05).max(0.05);
    let step = nice_step(top / 5.0);
    let hi = ((top / step).ceil() * step).min(1.0);
    stepped(desc, 0.0, hi, step)
}

/// Ticks at multiples of `step` across `[lo, hi]`, labelled with as many decimals as
/// the step needs.
fn stepped(desc: &str, lo: f64, hi: f64, step: f64) -> Axis {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let (i0, i1) = ((lo / step).round() as i64, (hi / step).round() as i64);
    let ticks = (i0..=i1)
        // Rounding keeps 3 * 0.2 from landing a hair outside the range.
        .map(|i| (i as f64 * step * 1e9).round() / 1e9)
        .filter(|v| *v >= lo - 1e-9 && *v <= hi + 1e-9)
        .map(|v| (v, format!("{v:.decimals$}")))
        .collect();
    Axis {
        desc: desc.into(),
        range: (lo, hi),
        ticks,
    }
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let k = raw.log10().floor() as i32;
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * 10f64.powi(k))
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10f64.powi(k + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_ranges() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(24.9), 50.0);
        assert_eq!(nice_step(1.0), 1.0);
        let p = percent("a", Some((60.0, 64.0)));
        assert!(p.range.0 <= 59.0 && p.range.1 >= 65.0, "{p:?}");
        assert_eq!(p.ticks.first().unwrap().0, p.range.0);
        let p = percent("a", Some((95.0, 104.0)));
        assert_eq!(p.range.1, 100.0, "{p:?}");
        let r = unit_ratio("r", 0.75);
        assert_eq!(r.range, (0.0, 0.8));
        assert!(r.ticks.iter().all(|t| (0.0..=1.0).contains(&t.0)), "{r:?}");
        let r = unit_ratio("r", 1.0);
        assert_eq!(r.range.1, 1.0);
        let e = integers("epoch", 1, 200, 2.0, 8);
        assert_eq!(e.positions(), vec![50.0, 100.0, 150.0, 200.0]);
        let c = integers("component", 1, 10, 0.5, 12);
        assert_eq!(c.ticks.len(), 10);
        let l = log2_counts("shots", &[16, 1, 4, 4, 0]);
        assert_eq!(l.positions(), vec![0.0, 2.0, 4.0]);
        assert_eq!(l.label_at(4.0), "16");
    }
}

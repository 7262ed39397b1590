//! Summary statistics over seeds.

/// Arithmetic mean; `None` for no values.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (divides by n - 1, as over a handful of seeds the population
/// form understates the spread); `None` below two values.
pub fn sample_std(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_uses_n_minus_one() {
        // Deviations -1, 0, 1: sum of squares 2, over n - 1 = 2 gives variance 1.
        assert_eq!(sample_std(&[1.0, 2.0, 3.0]), Some(1.0));
        assert_eq!(sample_std(&[5.0]), None);
        assert_eq!(mean(&[]), None);
    }
}

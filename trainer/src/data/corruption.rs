//! Shifted copies of the embedded Fashion-MNIST data, in the spirit of MNIST-C: the same images
//! with a change of look the pretraining corpus never had, so few-shot tuning has room above
//! zero-shot, and the analog of ImageNet-V2/-Sketch/-A/-R as domain-generalisation targets.
//! Every corruption is a pure function of the pixels, the seed and the image's key.
use super::catalog::DatasetName;
use super::transforms::{SeededRng, TransformRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corruption {
    /// Brightness halved.
    Dark,
    /// Contrast cut to 40 % around the image mean.
    Contrast,
    /// Negative image (light background).
    Invert,
    /// Gaussian blur, sigma 1 pixel.
    Blur,
    /// Additive Gaussian noise, sigma 40 levels, drawn per image from the seed.
    Noise,
}

impl Corruption {
    pub const ALL: [Corruption; 5] = [
        Corruption::Dark,
        Corruption::Contrast,
        Corruption::Invert,
        Corruption::Blur,
        Corruption::Noise,
    ];

    pub fn dataset(self) -> DatasetName {
        match self {
            Corruption::Dark => DatasetName::FashionMnistDark,
            Corruption::Contrast => DatasetName::FashionMnistContrast,
            Corruption::Invert => DatasetName::FashionMnistInvert,
            Corruption::Blur => DatasetName::FashionMnistBlur,
            Corruption::Noise => DatasetName::FashionMnistNoise,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Corruption::Dark => "dark",
            Corruption::Contrast => "contrast",
            Corruption::Invert => "invert",
            Corruption::Blur => "blur",
            Corruption::Noise => "noise",
        }
    }

    /// Corrupts a `width` x `height` grayscale image in place; `key` identifies the image
    /// within the seed's stream.
    pub fn apply(self, px: &mut [u8], width: usize, height: usize, seed: u64, key: u64) {
        let to_u8 = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        match self {
            Corruption::Dark => px.iter_mut().for_each(|p| *p = to_u8(*p as f64 * 0.5)),
            Corruption::Invert => px.iter_mut().for_each(|p| *p = 255 - *p),
            Corruption::Contrast => {
                let mean = px.iter().map(|&p| p as f64).sum::<f64>() / px.len().max(1) as f64;
                px.iter_mut()
                    .for_each(|p| *p = to_u8(mean + (*p as f64 - mean) * 0.4));
            }
            Corruption::Noise => {
                let mut rng = SeededRng::for_item(seed, key);
                for p in px.iter_mut() {
                    // Box-Muller: one normal draw from two uniforms.
                    let u1 = rng.uniform(f64::MIN_POSITIVE, 1.0);
                    let u2 = rng.uniform(0.0, 1.0);
                    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    *p = to_u8(*p as f64 + 40.0 * z);
                }
            }
            Corruption::Blur => {
                let src: Vec<f64> = px.iter().map(|&p| p as f64).collect();
                let kernel: Vec<f64> = (-2i64..=2).map(|d| (-(d * d) as f64 / 2.0).exp()).collect();
                let total: f64 = kernel.iter().sum();
                let at = |v: &[f64], x: i64, y: i64| {
                    // Edge pixels repeat outward.
                    let x = x.clamp(0, width as i64 - 1) as usize;
                    let y = y.clamp(0, height as i64 - 1) as usize;
                    v[y * width + x]
                };
                let mut rows = vec![0.0; src.len()];
                for y in 0..height as i64 {
                    for x in 0..width as i64 {
                        rows[y as usize * width + x as usize] = (-2i64..=2)
                            .map(|d| kernel[(d + 2) as usize] * at(&src, x + d, y))
                            .sum::<f64>()
                            / total;
                    }
                }
                for y in 0..height as i64 {
                    for x in 0..width as i64 {
                        let v = (-2i64..=2)
                            .map(|d| kernel[(d + 2) as usize] * at(&rows, x, y + d))
                            .sum::<f64>()
                            / total;
                        px[y as usize * width + x as usize] = to_u8(v);
                    }
                }
            }
        }
    }
}

impl std::str::FromStr for Corruption {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Corruption::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!("unknown corruption `{s}` (dark, contrast, invert, blur, noise)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruptions_change_pixels_as_named() {
        let img: Vec<u8> = (0..16).map(|i| (i * 16) as u8).collect();
        let run = |c: Corruption, seed| {
            let mut p = img.clone();
            c.apply(&mut p, 4, 4, seed, 7);
            p
        };
        assert_eq!(run(Corruption::Dark, 0)[15], 120);
        assert_eq!(run(Corruption::Invert, 0)[0], 255);
        let c = run(Corruption::Contrast, 0);
        let spread = |v: &[u8]| *v.iter().max().unwrap() as i32 - *v.iter().min().unwrap() as i32;
        assert!(spread(&c) <= (spread(&img) * 2) / 5 + 1, "{c:?}");
        // Blur keeps a constant image constant and smooths an edge.
        let mut flat = vec![90u8; 16];
        Corruption::Blur.apply(&mut flat, 4, 4, 0, 0);
        assert!(flat.iter().all(|&p| p == 90));
        assert!(spread(&run(Corruption::Blur, 0)) < spread(&img));
        // Noise is fixed by (seed, key) and differs across seeds.
        assert_eq!(run(Corruption::Noise, 3), run(Corruption::Noise, 3));
        assert_ne!(run(Corruption::Noise, 3), run(Corruption::Noise, 4));
        assert_ne!(run(Corruption::Noise, 3), img);
    }
}

//! Images as the pretraining loop and the model card's evaluations see them: straight from the
//! idx files, through the same PIL-exact transforms the downstream pipeline applies to the PNGs
//! (grey replicated to RGB, bicubic resize, CLIP normalisation), so the features the card reports
//! are the features a grid cell computes.
use crate::data::fashion_mnist::IdxSet;
use crate::data::image::RgbImage;
use crate::data::transforms::{SeededRng, TestTransform, TrainTransform, TransformRng};
use rayon::prelude::*;
use tch::Tensor;

/// Pixels counted as ink (the background is near 0).
const INK: u8 = 25;

pub struct Corpus {
    pub images: Vec<RgbImage>,
    pub labels: Vec<i64>,
    /// Attribute index per image: 2 * dark + small (see `captions::attribute_words`).
    pub attributes: Vec<i64>,
}

fn ink_stats(px: &[u8]) -> (f64, usize) {
    let ink: Vec<f64> = px.iter().filter(|&&p| p > INK).map(|&p| p as f64).collect();
    let mean = ink.iter().sum::<f64>() / ink.len().max(1) as f64;
    (mean, ink.len())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl Corpus {
    /// Images `range` of an idx set. Attributes split each class at its medians of ink
    /// brightness and ink area, measured on these images.
    pub fn new(set: &IdxSet, range: std::ops::Range<usize>) -> Corpus {
        let range = range.start.min(set.len())..range.end.min(set.len());
        let images: Vec<RgbImage> = range
            .clone()
            .map(|i| {
                let rgb = set.image(i).iter().flat_map(|&p| [p, p, p]).collect();
                RgbImage::from_raw(set.cols, set.rows, rgb).expect("rows * cols * 3 bytes")
            })
            .collect();
        let labels: Vec<i64> = range.clone().map(|i| set.labels[i] as i64).collect();
        let stats: Vec<(f64, usize)> = range.map(|i| ink_stats(set.image(i))).collect();
        let mut medians = [(0.0, 0.0); 10];
        for (c, m) in medians.iter_mut().enumerate() {
            let of = |f: &dyn Fn(&(f64, usize)) -> f64| {
                median(
                    stats
                        .iter()
                        .zip(&labels)
                        .filter(|(_, &l)| l == c as i64)
                        .map(|(s, _)| f(s))
                        .collect(),
                )
            };
            *m = (of(&|s| s.0), of(&|s| s.1 as f64));
        }
        let attributes = stats
            .iter()
            .zip(&labels)
            .map(|(&(bright, area), &l)| {
                let (mb, ma) = medians[l as usize];
                2 * i64::from(bright < mb) + i64::from((area as f64) < ma)
            })
            .collect();
        Corpus {
            images,
            labels,
            attributes,
        }
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Test-transformed pixels [n, 3, R, R] of `indices`.
    pub fn test_pixels(&self, t: &TestTransform, indices: &[usize]) -> Tensor {
        let r = t.size();
        let chw: Vec<Vec<f32>> = indices
            .par_iter()
            .map(|&i| t.apply(&self.images[i]))
            .collect();
        Tensor::from_slice(&chw.concat()).view([indices.len() as i64, 3, r as i64, r as i64])
    }

    /// Pixels of `indices`, each augmented with probability `p` (its own draw for `key`), else
    /// test-transformed.
    pub fn train_pixels(
        &self,
        aug: &TrainTransform,
        test: &TestTransform,
        p: f64,
        key: u64,
        indices: &[usize],
    ) -> Tensor {
        let r = test.size();
        let chw: Vec<Vec<f32>> = indices
            .par_iter()
            .map(|&i| {
                let mut rng = SeededRng::for_item(key, i as u64);
                if rng.uniform(0.0, 1.0) < p {
                    aug.apply(&self.images[i], &mut rng)
                } else {
                    test.apply(&self.images[i])
                }
            })
            .collect();
        Tensor::from_slice(&chw.concat()).view([indices.len() as i64, 3, r as i64, r as i64])
    }
}

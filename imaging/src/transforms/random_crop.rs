//! torchvision's `RandomResizedCrop.get_params`, draw for draw.

use super::rng::TransformRng;

/// A crop box in the source image, in torchvision's `(top, left, height, width)` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// Python's `round` on floats: halves go to the even neighbour.
pub(crate) fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// Picks the crop of a `width`×`height` image: up to 10 tries of an area fraction drawn from
/// `scale` and an aspect ratio drawn log-uniformly from `ratio`, each accepted when it fits,
/// with a uniformly placed top-left corner; otherwise the centred crop whose aspect ratio is
/// clamped to `ratio`.
///
/// torchvision computes `log(ratio)` and `exp(draw)` on float32 tensors, so the aspect ratio is
/// a float32 value; both are done in `f32` here too, so replayed torch draws give torch's boxes.
pub fn random_resized_crop_params<R: TransformRng + ?Sized>(
    width: usize,
    height: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut R,
) -> CropBox {
    let area = (width * height) as f64;
    let log_lo = f64::from((ratio.0 as f32).ln());
    let log_hi = f64::from((ratio.1 as f32).ln());
    for _ in 0..10 {
        let target_area = area * rng.uniform(scale.0, scale.1);
        let aspect = f64::from((rng.uniform(log_lo, log_hi) as f32).exp());
        let w = round_half_even((target_area * aspect).sqrt());
        let h = round_half_even((target_area / aspect).sqrt());
        if 0.0 < w && w <= width as f64 && 0.0 < h && h <= height as f64 {
            let (w, h) = (w as usize, h as usize);
            let top = rng.randint(0, (height - h) as i64) as usize;
            let left = rng.randint(0, (width - w) as i64) as usize;
            return CropBox {
                top,
                left,
                height: h,
                width: w,
            };
        }
    }
    let in_ratio = width as f64 / height as f64;
    let min_ratio = ratio.0.min(ratio.1);
    let max_ratio = ratio.0.max(ratio.1);
    let (w, h) = if in_ratio < min_ratio {
        (width, round_half_even(width as f64 / min_ratio) as usize)
    } else if in_ratio > max_ratio {
        (round_half_even(height as f64 * max_ratio) as usize, height)
    } else {
        (width, height)
    };
    CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always proposes the whole image at an impossible ratio, forcing the fallback.
    struct Never;
    impl TransformRng for Never {
        fn uniform(&mut self, _lo: f64, hi: f64) -> f64 {
            hi
        }
        fn randint(&mut self, _lo: i64, _hi: i64) -> i64 {
            unreachable!("no try can succeed")
        }
    }

    #[test]
    fn fallback_clamps_the_ratio_and_centres() {
        let r = (3.0 / 4.0, 4.0 / 3.0);
        // Wide 400x100: ratio 4 > 4/3 -> h = 100, w = round(133.33) = 133.
        let b = random_resized_crop_params(400, 100, (1.0, 1.0), r, &mut Never);
        assert_eq!(
            b,
            CropBox {
                top: 0,
                left: 133,
                height: 100,
                width: 133
            }
        );
        // Tall 30x600: w = 30, h = round(40) = 40, top = 280.
        let b = random_resized_crop_params(30, 600, (1.0, 1.0), r, &mut Never);
        assert_eq!(
            b,
            CropBox {
                top: 280,
                left: 0,
                height: 40,
                width: 30
            }
        );
    }

    #[test]
    fn python_rounding_goes_to_even() {
        assert_eq!(round_half_even(36.5), 36.0);
        assert_eq!(round_half_even(37.5), 38.0);
        assert_eq!(round_half_even(2.4999), 2.0);
    }
}

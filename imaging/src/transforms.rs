//! Dassl's image transforms for CLIP, matching torchvision applied to PIL images.
//!
//! Test: `Resize(S, BICUBIC)` (shorter side to S, longer side `int(S·long/short)`),
//! `CenterCrop(S)` (offsets rounded half-to-even, as Python's `round`), `ToTensor`,
//! `Normalize(CLIP mean/std)`. Train: `RandomResizedCrop(S, BICUBIC)`, `RandomHorizontalFlip`,
//! `ToTensor`, `Normalize`. S is 224 for the released configs and comes from the model's input
//! resolution otherwise (288, 336, 384, 448 for the larger CLIP towers).
//!
//! The resampling is PIL's bicubic to the bit ([`resample`]); only the output window that the
//! centre crop keeps is computed. Outputs are `[3, S, S]` float32, channel-major.
pub mod random_crop;
pub mod resample;
pub mod rng;

pub use random_crop::{random_resized_crop_params, CropBox};
pub use resample::{resize_bicubic, resize_bicubic_box, Rect};
pub use rng::{SeededRng, TransformRng};

use crate::image::RgbImage;
use random_crop::round_half_even;

/// Invalid transform settings.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("transform output size must be positive, got {0}")]
    ZeroSize(usize),
    #[error("invalid RandomResizedCrop {what} range ({lo}, {hi}): need 0 < lo <= hi")]
    BadRange {
        what: &'static str,
        lo: f64,
        hi: f64,
    },
    #[error("flip probability must be in [0, 1], got {0}")]
    BadFlip(f64),
    #[error("output buffer holds {got} floats, the transform writes {want}")]
    BufferSize { got: usize, want: usize },
}

/// Per-channel `(x/255 - mean)/std` in float32, operation for operation as torchvision's
/// `ToTensor` then `Normalize` (both divide; neither multiplies by a reciprocal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    /// OpenAI CLIP's statistics. torch receives them as Python floats and casts to float32, so
    /// they are written as f64 and narrowed the same way.
    pub const CLIP: Normalize = Normalize {
        mean: [
            0.48145466f64 as f32,
            0.4578275f64 as f32,
            0.40821073f64 as f32,
        ],
        std: [
            0.26862954f64 as f32,
            0.26130258f64 as f32,
            0.27577711f64 as f32,
        ],
    };

    /// The normalised value of every 8-bit level per channel. Each entry is computed with the
    /// same float32 operations as torchvision, so a lookup gives identical values.
    fn table(&self) -> [[f32; 256]; 3] {
        let mut t = [[0.0f32; 256]; 3];
        for (c, row) in t.iter_mut().enumerate() {
            for (level, v) in row.iter_mut().enumerate() {
                *v = (level as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        t
    }

    /// Writes `img` as `[3, H, W]` into `out`, mirrored left-right when `flip`.
    pub fn write_chw(&self, img: &RgbImage, flip: bool, out: &mut [f32]) {
        let (w, h) = (img.width(), img.height());
        assert_eq!(out.len(), 3 * w * h, "output buffer size");
        let table = self.table();
        let plane = w * h;
        for (c, (lut, out_plane)) in table.iter().zip(out.chunks_exact_mut(plane)).enumerate() {
            for (y, out_row) in out_plane.chunks_exact_mut(w).enumerate() {
                let row = img.row(y);
                for (x, o) in out_row.iter_mut().enumerate() {
                    let sx = if flip { w - 1 - x } else { x };
                    *o = lut[usize::from(row[sx * 3 + c])];
                }
            }
        }
    }
}

/// Shorter side to `size`, as `torchvision.transforms.Resize(size)` computes it; `(w, h)`.
pub fn resized_dims(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    // Python: int(size * long / short), an exact integer product then a rounded division.
    let new_long = ((size * long) as f64 / short as f64) as usize;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// torchvision's `CenterCrop` offset along one axis.
fn center_offset(len: usize, crop: usize) -> usize {
    round_half_even((len - crop) as f64 / 2.0) as usize
}

/// The evaluation transform: shorter side to `size` (bicubic), centre crop `size`, normalise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestTransform {
    size: usize,
    normalize: Normalize,
}

impl TestTransform {
    /// `size` is the model's input resolution (224 for RN50 and ViT-B).
    pub fn new(size: usize) -> Result<Self, TransformError> {
        Self::with_normalize(size, Normalize::CLIP)
    }

    pub fn with_normalize(size: usize, normalize: Normalize) -> Result<Self, TransformError> {
        if size == 0 {
            return Err(TransformError::ZeroSize(size));
        }
        Ok(Self { size, normalize })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The 8-bit `size`×`size` image after resize and centre crop.
    pub fn resize_crop(&self, img: &RgbImage) -> RgbImage {
        let s = self.size;
        let (rw, rh) = resized_dims(img.width(), img.height(), s);
        let window = Rect {
            x: center_offset(rw, s),
            y: center_offset(rh, s),
            width: s,
            height: s,
        };
        let whole = Rect {
            x: 0,
            y: 0,
            width: img.width(),
            height: img.height(),
        };
        // torchvision returns the image untouched when it already has the target size; the
        // resampler's identity test gives the same pixels.
        let src_box = [0.0, 0.0, img.width() as f32, img.height() as f32];
        resample::resample(img, whole, src_box, rw, rh, window)
    }

    /// Writes the normalised `[3, size, size]` tensor data into `out`.
    pub fn apply_into(&self, img: &RgbImage, out: &mut [f32]) -> Result<(), TransformError> {
        check_len(out, self.size)?;
        self.normalize.write_chw(&self.resize_crop(img), false, out);
        Ok(())
    }

    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        let mut out = vec![0.0; 3 * self.size * self.size];
        self.normalize
            .write_chw(&self.resize_crop(img), false, &mut out);
        out
    }
}

fn check_len(out: &[f32], size: usize) -> Result<(), TransformError> {
    let want = 3 * size * size;
    if out.len() == want {
        Ok(())
    } else {
        Err(TransformError::BufferSize {
            got: out.len(),
            want,
        })
    }
}

/// The training augmentation: random resized crop, horizontal flip, normalise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainTransform {
    size: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    flip_p: f64,
    normalize: Normalize,
}

impl TrainTransform {
    /// Dassl's defaults: scale (0.08, 1), ratio (3/4, 4/3), flip probability 0.5, CLIP stats.
    pub fn new(size: usize) -> Result<Self, TransformError> {
        Self::with_params(
            size,
            (0.08, 1.0),
            (3.0 / 4.0, 4.0 / 3.0),
            0.5,
            Normalize::CLIP,
        )
    }

    pub fn with_params(
        size: usize,
        scale: (f64, f64),
        ratio: (f64, f64),
        flip_p: f64,
        normalize: Normalize,
    ) -> Result<Self, TransformError> {
        if size == 0 {
            return Err(TransformError::ZeroSize(size));
        }
        for (what, (lo, hi)) in [("scale", scale), ("ratio", ratio)] {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return Err(TransformError::BadRange { what, lo, hi });
            }
        }
        if !(0.0..=1.0).contains(&flip_p) {
            return Err(TransformError::BadFlip(flip_p));
        }
        Ok(Self {
            size,
            scale,
            ratio,
            flip_p,
            normalize,
        })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The crop box for an image of this size (draws from `rng`).
    pub fn crop_box<R: TransformRng + ?Sized>(
        &self,
        width: usize,
        height: usize,
        rng: &mut R,
    ) -> CropBox {
        random_resized_crop_params(width, height, self.scale, self.ratio, rng)
    }

    /// `F.resized_crop(img, top, left, h, w, [size, size], BICUBIC)`: the 8-bit result.
    pub fn resized_crop(&self, img: &RgbImage, b: CropBox) -> RgbImage {
        let s = self.size;
        let rect = Rect {
            x: b.left,
            y: b.top,
            width: b.width,
            height: b.height,
        };
        let window = Rect {
            x: 0,
            y: 0,
            width: s,
            height: s,
        };
        resample::resample(
            img,
            rect,
            [0.0, 0.0, b.width as f32, b.height as f32],
            s,
            s,
            window,
        )
    }

    /// Runs the augmentation with draws in torchvision's order (crop parameters, then the flip
    /// as `uniform(0, 1) < p`) and writes `[3, size, size]` into `out`.
    pub fn apply_into<R: TransformRng + ?Sized>(
        &self,
        img: &RgbImage,
        rng: &mut R,
        out: &mut [f32],
    ) -> Result<(), TransformError> {
        check_len(out, self.size)?;
        let b = self.crop_box(img.width(), img.height(), rng);
        let crop = self.resized_crop(img, b);
        let flip = rng.uniform(0.0, 1.0) < self.flip_p;
        self.normalize.write_chw(&crop, flip, out);
        Ok(())
    }

    pub fn apply<R: TransformRng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> Vec<f32> {
        let mut out = vec![0.0; 3 * self.size * self.size];
        self.apply_into(img, rng, &mut out)
            .expect("buffer has the right size");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_aspect_with_truncation() {
        assert_eq!(resized_dims(640, 427, 224), (335, 224));
        assert_eq!(resized_dims(427, 640, 224), (224, 335));
        assert_eq!(resized_dims(100, 100, 336), (336, 336));
        assert_eq!(resized_dims(97, 131, 224), (224, 302));
    }

    #[test]
    fn centre_offsets_round_half_to_even() {
        assert_eq!(center_offset(297, 224), 36); // 36.5
        assert_eq!(center_offset(299, 224), 38); // 37.5
        assert_eq!(center_offset(224, 224), 0);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(TestTransform::new(0).is_err());
        let n = Normalize::CLIP;
        assert!(TrainTransform::with_params(224, (0.5, 0.1), (0.75, 1.0), 0.5, n).is_err());
        assert!(TrainTransform::with_params(224, (0.1, 0.5), (0.0, 1.0), 0.5, n).is_err());
        assert!(TrainTransform::with_params(224, (0.1, 0.5), (0.75, 1.0), 1.5, n).is_err());
        let t = TestTransform::new(4).unwrap();
        let img = RgbImage::from_raw(4, 4, vec![9; 48]).unwrap();
        assert!(t.apply_into(&img, &mut [0.0; 47]).is_err());
    }

    #[test]
    fn flip_mirrors_columns() {
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 255, 255, 255]).unwrap();
        let (mut a, mut b) = ([0.0f32; 6], [0.0f32; 6]);
        Normalize::CLIP.write_chw(&img, false, &mut a);
        Normalize::CLIP.write_chw(&img, true, &mut b);
        for c in 0..3 {
            assert_eq!(a[c * 2], b[c * 2 + 1]);
            assert_eq!(a[c * 2 + 1], b[c * 2]);
            assert!(a[c * 2] < 0.0 && a[c * 2 + 1] > 0.0);
        }
    }
}

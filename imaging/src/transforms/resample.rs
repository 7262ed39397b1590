//! PIL's bicubic `Image.resize`, reproduced to the bit.
//!
//! PIL resamples with a separable convolution: a horizontal pass into an 8-bit intermediate
//! image, then a vertical pass. Per output index it evaluates the bicubic kernel (a = -0.5) at
//! the source pixel centres, widening the kernel by the scale factor when shrinking (this is the
//! antialiasing), normalises the taps to sum 1, rounds them to 22-bit fixed point, and
//! accumulates `pixel·tap` in 32-bit integers starting from half a unit, then shifts and clamps
//! to 0..=255. Every one of those steps changes the low bit of some outputs, so each is kept:
//! the float expression order of the kernel, the truncating casts, the clamped bounds, and the
//! clamp between the two passes. PIL's optional `reducing_gap` pre-shrink is not part of this:
//! `Image.resize` only applies it when the caller passes `reducing_gap`, and torchvision never
//! does.
//!
//! Output pixels only depend on their own taps, so a window of the output (for example the
//! centre crop that follows a resize) can be computed alone with identical values.

use crate::image::RgbImage;

/// Fractional bits of the fixed-point taps: 32 bits minus 8 for the pixel value minus 2 of
/// headroom, because bicubic taps can be negative and sum above 1 per side.
const PRECISION_BITS: u32 = 22;

/// Rectangle in pixel units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The taps of one axis: output index `i` reads `count[i]` source pixels from `start[i]`.
struct Axis {
    ksize: usize,
    start: Vec<usize>,
    count: Vec<usize>,
    taps: Vec<i32>,
}

impl Axis {
    /// `in0..in1` is the source span (PIL's box, single precision as PIL stores it) mapped onto
    /// `out_size` pixels; `in_size` bounds the taps.
    fn new(in_size: usize, in0: f32, in1: f32, out_size: usize) -> Self {
        let support_base = 2.0; // bicubic
        let scale = f64::from(in1 - in0) / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = support_base * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut axis = Axis {
            ksize,
            start: Vec::with_capacity(out_size),
            count: Vec::with_capacity(out_size),
            taps: vec![0; out_size * ksize],
        };
        let ss = 1.0 / filterscale;
        let mut weights = vec![0.0f64; ksize];
        for xx in 0..out_size {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // `as i64` truncates toward zero like C's int cast; the clamps follow.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let n = (xmax - xmin as i64).max(0) as usize;
            let mut total = 0.0;
            for (x, w) in weights.iter_mut().enumerate().take(n) {
                *w = bicubic((((x + xmin) as f64 - center) + 0.5) * ss);
                total += *w;
            }
            let row = &mut axis.taps[xx * ksize..xx * ksize + n];
            for (tap, &w) in row.iter_mut().zip(&weights) {
                let w = if total != 0.0 { w / total } else { w };
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                *tap = if w < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            axis.start.push(xmin);
            axis.count.push(n);
        }
        axis
    }

    fn taps(&self, i: usize) -> &[i32] {
        &self.taps[i * self.ksize..i * self.ksize + self.count[i]]
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resamples the part `src_box` of `src` (PIL's `box`, in source pixels) to `out_w`×`out_h` and
/// returns only the output pixels inside `window`. `src_rect` restricts the source to a
/// sub-image first (an integer crop, as `torchvision`'s `resized_crop` does before resizing);
/// `src_box` is relative to it.
pub(crate) fn resample(
    src: &RgbImage,
    src_rect: Rect,
    src_box: [f32; 4],
    out_w: usize,
    out_h: usize,
    window: Rect,
) -> RgbImage {
    assert!(window.x + window.width <= out_w && window.y + window.height <= out_h);
    assert!(
        src_rect.x + src_rect.width <= src.width() && src_rect.y + src_rect.height <= src.height()
    );
    let (in_w, in_h) = (src_rect.width, src_rect.height);
    // Same tests as PIL: a pass is skipped when it would be the identity.
    let need_h = out_w != in_w || src_box[0] != 0.0 || src_box[2] != out_w as f32;
    let need_v = out_h != in_h || src_box[1] != 0.0 || src_box[3] != out_h as f32;
    let vert = Axis::new(in_h, src_box[1], src_box[3], out_h);
    let rows = window.y..window.y + window.height;

    // Source rows (relative to src_rect) the vertical pass reads, or that are copied through.
    let (row_lo, row_hi) = if need_v {
        let lo = rows.clone().map(|y| vert.start[y]).min().unwrap_or(0);
        let hi = rows
            .clone()
            .map(|y| vert.start[y] + vert.count[y])
            .max()
            .unwrap_or(0);
        (lo, hi.max(lo))
    } else {
        (window.y, window.y + window.height)
    };

    // Horizontal pass (or a plain copy of the window's columns) into `mid`, rows row_lo..row_hi.
    let width = window.width;
    let mut mid = vec![0u8; (row_hi - row_lo) * width * 3];
    if need_h {
        let horiz = Axis::new(in_w, src_box[0], src_box[2], out_w);
        for (r, out_row) in (row_lo..row_hi).zip(mid.chunks_exact_mut(width * 3)) {
            let line = &src.row(src_rect.y + r)[src_rect.x * 3..(src_rect.x + in_w) * 3];
            for (xx, px) in (window.x..window.x + width).zip(out_row.chunks_exact_mut(3)) {
                let base = &line[horiz.start[xx] * 3..];
                let (mut r0, mut g0, mut b0) = (HALF, HALF, HALF);
                for (t, &k) in horiz.taps(xx).iter().enumerate() {
                    r0 += i32::from(base[t * 3]) * k;
                    g0 += i32::from(base[t * 3 + 1]) * k;
                    b0 += i32::from(base[t * 3 + 2]) * k;
                }
                px.copy_from_slice(&[clip8(r0), clip8(g0), clip8(b0)]);
            }
        }
    } else {
        for (r, out_row) in (row_lo..row_hi).zip(mid.chunks_exact_mut(width * 3)) {
            let line = src.row(src_rect.y + r);
            let from = (src_rect.x + window.x) * 3;
            out_row.copy_from_slice(&line[from..from + width * 3]);
        }
    }

    if !need_v {
        return RgbImage::from_raw(width, window.height, mid).expect("window is not empty");
    }
    let stride = width * 3;
    let mut out = vec![0u8; window.height * stride];
    let mut acc = vec![0i32; stride];
    for (yy, out_row) in rows.zip(out.chunks_exact_mut(stride)) {
        acc.fill(HALF);
        for (t, &k) in vert.taps(yy).iter().enumerate() {
            let r = vert.start[yy] + t - row_lo;
            for (a, &v) in acc.iter_mut().zip(&mid[r * stride..(r + 1) * stride]) {
                *a += i32::from(v) * k;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage::from_raw(width, window.height, out).expect("window is not empty")
}

/// `Image.resize((out_w, out_h), Image.BICUBIC)`.
pub fn resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    resize_bicubic_box(
        img,
        [0.0, 0.0, img.width() as f32, img.height() as f32],
        out_w,
        out_h,
    )
}

/// `Image.resize((out_w, out_h), Image.BICUBIC, box=src_box)`; the box is in source pixels.
pub fn resize_bicubic_box(
    img: &RgbImage,
    src_box: [f32; 4],
    out_w: usize,
    out_h: usize,
) -> RgbImage {
    let whole = Rect {
        x: 0,
        y: 0,
        width: img.width(),
        height: img.height(),
    };
    let window = Rect {
        x: 0,
        y: 0,
        width: out_w,
        height: out_h,
    };
    resample(img, whole, src_box, out_w, out_h, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_interpolating_with_unit_taps_at_scale_one() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(2.0), 0.0);
        assert!(bicubic(1.5) < 0.0);
        let axis = Axis::new(10, 0.0, 10.0, 10);
        for i in 0..10 {
            let taps = axis.taps(i);
            let at = i - axis.start[i];
            assert_eq!(taps[at], 1 << PRECISION_BITS, "index {i}");
            assert_eq!(taps.iter().sum::<i32>(), 1 << PRECISION_BITS);
        }
    }

    #[test]
    fn shrinking_widens_the_support() {
        let axis = Axis::new(100, 0.0, 100.0, 25);
        // Scale 4: support 8 source pixels each side of the centre.
        assert_eq!(axis.ksize, 17);
        assert_eq!(axis.count[12], 16);
    }

    #[test]
    fn window_equals_the_same_part_of_the_full_output() {
        let data: Vec<u8> = (0..37 * 23 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let img = RgbImage::from_raw(37, 23, data).unwrap();
        let full = resize_bicubic(&img, 19, 41);
        let whole = Rect {
            x: 0,
            y: 0,
            width: 37,
            height: 23,
        };
        let win = Rect {
            x: 3,
            y: 5,
            width: 11,
            height: 30,
        };
        let part = resample(&img, whole, [0.0, 0.0, 37.0, 23.0], 19, 41, win);
        for y in 0..30 {
            assert_eq!(part.row(y), &full.row(y + 5)[3 * 3..14 * 3]);
        }
    }
}

//! Image decoding with PIL's `Image.open(path).convert("RGB")` semantics.
//!
//! The reference pipeline loads every image with PIL and converts it to 8-bit RGB. The `image`
//! crate decodes the files; this module maps each decoded layout onto RGB the way PIL's `convert`
//! does, which is not always the obvious way:
//! - alpha is dropped, never composited (RGBA, LA, palette with tRNS);
//! - greyscale is replicated into the three channels;
//! - 16-bit RGB/RGBA/LA PNGs keep the most significant byte (PIL unpacks them as `RGB;16B`);
//! - 16-bit greyscale PNGs become PIL mode `I;16`, whose conversion to RGB *clamps* to 0..=255
//!   instead of scaling, so most of such an image turns white. We reproduce that.
//! - CMYK and YCCK JPEGs: PIL assumes Adobe's inverted storage and converts with
//!   `R = (255-K) - (C·(255-K))/255` (rounded); in terms of the stored values that is
//!   `round(c·k/255)` ([`stored_cmyk_to_rgb`]).
//!
//! JPEGs are decoded by libjpeg-turbo, as PIL's are, with PIL's settings (TurboJPEG's defaults:
//! the accurate integer IDCT and fancy chroma upsampling), so their pixels are PIL's exactly;
//! PNGs are decoded by the `image` crate, also exactly. EXIF orientation is ignored, as
//! `Image.open` ignores it. The format is sniffed from the content, not the file name.
mod jpeg_check;

use ::image::{DynamicImage, ImageFormat};
use std::path::{Path, PathBuf};

/// Why an image could not be turned into RGB pixels. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read image file {0}")]
    Unreadable(subpt_io::IoError),
    #[error("corrupt image file {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("unsupported image file {path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
}

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (`[y][x][c]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl RgbImage {
    /// Wraps interleaved RGB bytes; `None` when the length is not `width*height*3` or the image
    /// is empty.
    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        let ok =
            width > 0 && height > 0 && width.checked_mul(height)?.checked_mul(3)? == data.len();
        ok.then_some(Self {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Interleaved RGB bytes, `height` rows of `width*3`.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// One row of `width*3` bytes.
    pub fn row(&self, y: usize) -> &[u8] {
        let stride = self.width * 3;
        &self.data[y * stride..(y + 1) * stride]
    }
}

/// Reads and decodes `path` like `PIL.Image.open(path).convert("RGB")`.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = subpt_io::read(path).map_err(ImageError::Unreadable)?;
    decode_rgb(&bytes, path)
}

/// Decodes an in-memory JPEG or PNG; `path` is only used in error messages.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage, ImageError> {
    let corrupt = |detail: String| ImageError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let unsupported = |detail: String| ImageError::Unsupported {
        path: path.to_path_buf(),
        detail,
    };
    let format = ::image::guess_format(bytes)
        .map_err(|_| unsupported("not a JPEG or PNG file (unrecognised content)".into()))?;
    let grey16_clamps = match format {
        ImageFormat::Jpeg => {
            // PIL raises "image file is truncated" on a cut-off scan; a complete file ends its
            // scans with an EOI marker.
            jpeg_check::check_complete(bytes).map_err(corrupt)?;
            return decode_jpeg(bytes).map_err(corrupt);
        }
        ImageFormat::Png => png_is_grey16(bytes),
        other => {
            return Err(unsupported(format!(
                "{other:?} images are not supported (only JPEG and PNG)"
            )))
        }
    };
    let decoded = ::image::load_from_memory_with_format(bytes, format).map_err(|e| match e {
        ::image::ImageError::Unsupported(u) => unsupported(u.to_string()),
        ::image::ImageError::Limits(l) => unsupported(l.to_string()),
        other => corrupt(other.to_string()),
    })?;
    to_rgb(decoded, grey16_clamps).ok_or_else(|| unsupported("unsupported pixel layout".into()))
}

/// Decodes a JPEG with libjpeg-turbo: YCbCr, RGB and greyscale straight to RGB (grey
/// replicated, as PIL's `convert("RGB")` does), CMYK and YCCK to their stored CMYK values and
/// then to RGB as PIL converts them.
fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};
    let mut d = Decompressor::new().map_err(|e| e.to_string())?;
    let header = d.read_header(bytes).map_err(|e| e.to_string())?;
    let (w, h) = (header.width, header.height);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, channels) = match cmyk {
        true => (PixelFormat::CMYK, 4),
        false => (PixelFormat::RGB, 3),
    };
    let mut image = Image {
        pixels: vec![0u8; channels * w * h],
        width: w,
        pitch: channels * w,
        height: h,
        format,
    };
    d.decompress(bytes, image.as_deref_mut())
        .map_err(|e| e.to_string())?;
    let data = match cmyk {
        true => image
            .pixels
            .chunks_exact(4)
            .flat_map(|p| stored_cmyk_to_rgb([p[0], p[1], p[2], p[3]]))
            .collect(),
        false => image.pixels,
    };
    RgbImage::from_raw(w, h, data).ok_or_else(|| "empty image".to_string())
}

/// True for a 16-bit greyscale PNG (colour type 0), which PIL opens as mode `I;16`. The `image`
/// crate reports it as 16-bit grey+alpha when it carries a tRNS chunk, so the header decides.
fn png_is_grey16(bytes: &[u8]) -> bool {
    // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4) -> depth, colour type.
    bytes.len() > 25 && &bytes[12..16] == b"IHDR" && bytes[24] == 16 && bytes[25] == 0
}

fn to_rgb(img: DynamicImage, grey16_clamps: bool) -> Option<RgbImage> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<u8> = match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageRgba8(b) => rgb_from(b.as_raw(), 4, 3, |v| v),
        DynamicImage::ImageLuma8(b) => rgb_from(b.as_raw(), 1, 1, |v| v),
        DynamicImage::ImageLumaA8(b) => rgb_from(b.as_raw(), 2, 1, |v| v),
        DynamicImage::ImageRgb16(b) => rgb_from(b.as_raw(), 3, 3, msb),
        DynamicImage::ImageRgba16(b) => rgb_from(b.as_raw(), 4, 3, msb),
        DynamicImage::ImageLuma16(b) => rgb_from(b.as_raw(), 1, 1, grey16_to_u8(grey16_clamps)),
        DynamicImage::ImageLumaA16(b) => rgb_from(b.as_raw(), 2, 1, grey16_to_u8(grey16_clamps)),
        _ => return None,
    };
    RgbImage::from_raw(w, h, data)
}

fn msb(v: u16) -> u8 {
    (v >> 8) as u8
}

fn grey16_to_u8(clamps: bool) -> fn(u16) -> u8 {
    if clamps {
        |v| v.min(255) as u8
    } else {
        msb
    }
}

/// Builds RGB from `stride` samples per pixel: the first `colours` of them are the colour (1 =
/// grey, replicated), the rest (alpha) are dropped.
fn rgb_from<T: Copy>(src: &[T], stride: usize, colours: usize, conv: impl Fn(T) -> u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / stride * 3);
    for px in src.chunks_exact(stride) {
        if colours == 1 {
            let g = conv(px[0]);
            out.extend_from_slice(&[g, g, g]);
        } else {
            out.extend_from_slice(&[conv(px[0]), conv(px[1]), conv(px[2])]);
        }
    }
    out
}

/// PIL's CMYK -> RGB conversion on its (non-inverted) CMYK values:
/// `R = (255-K) - round(C·(255-K)/255)`, likewise G from M and B from Y.
pub fn cmyk_to_rgb(cmyk: [u8; 4]) -> [u8; 3] {
    let nk = 255 - i32::from(cmyk[3]);
    let channel = |v: u8| {
        let t = i32::from(v) * nk + 128;
        let scaled = ((t >> 8) + t) >> 8;
        (nk - scaled).clamp(0, 255) as u8
    };
    [channel(cmyk[0]), channel(cmyk[1]), channel(cmyk[2])]
}

/// PIL's conversion in terms of the stored (Adobe-inverted) CMYK values a JPEG decoder returns,
/// `round(c·k/255)`: equal to [`cmyk_to_rgb`] applied to the inverted values, which the unit
/// test checks for every pair.
fn stored_cmyk_to_rgb(stored: [u8; 4]) -> [u8; 3] {
    let k = u32::from(stored[3]);
    let channel = |v: u8| {
        let t = u32::from(v) * k + 128;
        ((t + (t >> 8)) >> 8) as u8
    };
    [channel(stored[0]), channel(stored[1]), channel(stored[2])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_cmyk_formula_equals_pil_on_inverted_values() {
        for c in 0..=255u8 {
            for k in 0..=255u8 {
                let pil = cmyk_to_rgb([255 - c, c, 255 - c, 255 - k]);
                let stored = stored_cmyk_to_rgb([c, 255 - c, c, k]);
                assert_eq!(pil, stored, "c={c} k={k}");
            }
        }
    }

    #[test]
    fn grey_and_alpha_layouts_map_like_pil() {
        let la = DynamicImage::ImageLumaA8(
            ::image::GrayAlphaImage::from_raw(2, 1, vec![10, 0, 200, 255]).unwrap(),
        );
        assert_eq!(
            to_rgb(la, false).unwrap().as_raw(),
            &[10, 10, 10, 200, 200, 200]
        );
        let g16 = DynamicImage::ImageLuma16(
            ::image::ImageBuffer::from_raw(3, 1, vec![7u16, 255, 4000]).unwrap(),
        );
        assert_eq!(
            to_rgb(g16.clone(), true).unwrap().as_raw(),
            &[7, 7, 7, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(
            to_rgb(g16, false).unwrap().as_raw(),
            &[0, 0, 0, 0, 0, 0, 15, 15, 15]
        );
    }

    #[test]
    fn unknown_content_is_unsupported_and_names_the_path() {
        let err = decode_rgb(b"hello", Path::new("/x/y.jpg")).unwrap_err();
        assert!(matches!(err, ImageError::Unsupported { .. }));
        assert!(err.to_string().contains("/x/y.jpg"), "{err}");
    }

    #[test]
    fn rejects_mismatched_raw_lengths() {
        assert!(RgbImage::from_raw(2, 2, vec![0; 11]).is_none());
        assert!(RgbImage::from_raw(0, 2, vec![]).is_none());
        assert!(RgbImage::from_raw(2, 2, vec![0; 12]).is_some());
    }
}

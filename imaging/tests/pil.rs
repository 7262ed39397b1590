//! Image decoding and transforms against PIL + torchvision (the trainer's batch loader is
//! checked against this crate's single-image path in the trainer's suite).
//!
//! `tests/oracle/image_oracle.py` builds test images from scikit-learn's two sample photographs
//! (crops of many shapes, JPEG subsamplings, greyscale, CMYK, YCCK, PNG with alpha, palette,
//! low and high bit depths, broken files) and writes what PIL/torchvision make of them. All
//! checks run in one test so the oracle runs once; every failed check is listed at the end.
//!
//! Tolerances:
//! - resize after decoding (uint8): exact. Inputs are PIL's decoded pixels, so only the
//!   resampler is compared.
//! - after ToTensor+Normalize (float32): 1e-6 absolute (same float32 operations, so 0 is expected).
//! - decoding PNG and JPEG: exact (0 levels). JPEGs are decoded by libjpeg-turbo with PIL's
//!   settings, as PIL decodes them; end-to-end float outputs are within FLOAT_TOL for both.
#[path = "../../tests/harness.rs"]
mod harness;
use harness::Checks;
use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use subpt_imaging::image::{cmyk_to_rgb, load_rgb, ImageError, RgbImage};
use subpt_imaging::transforms::{
    resize_bicubic, resize_bicubic_box, resized_dims, CropBox, TestTransform, TrainTransform,
    TransformRng,
};

const FLOAT_TOL: f32 = 1e-6;

fn run_oracle(out: &Path) {
    harness::run("image_oracle.py", &[out]);
}

struct Expected<'a> {
    st: SafeTensors<'a>,
}

impl Expected<'_> {
    fn u8(&self, name: &str) -> (Vec<usize>, Vec<u8>) {
        let t = self
            .st
            .tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::U8, "{name}");
        (t.shape().to_vec(), t.data().to_vec())
    }
    fn f32(&self, name: &str) -> Vec<f32> {
        let t = self
            .st
            .tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn f64(&self, name: &str) -> Vec<f64> {
        let t = self
            .st
            .tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::F64, "{name}");
        t.data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn i64(&self, name: &str) -> Vec<i64> {
        let t = self
            .st
            .tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.dtype(), Dtype::I64, "{name}");
        t.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }
    fn image(&self, name: &str) -> RgbImage {
        let (shape, data) = self.u8(name);
        RgbImage::from_raw(shape[1], shape[0], data).unwrap()
    }
}

fn max_abs_u8(a: &[u8], b: &[u8]) -> (u8, f64) {
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.len().max(1) as f64)
}

fn max_abs_f32(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Replays torchvision's logged draws and notes any call that differs from torch's.
struct Replay {
    draws: Vec<[f64; 4]>,
    next: usize,
    problems: Vec<String>,
}

impl Replay {
    fn take(&mut self, kind: f64, lo: f64, hi: f64) -> f64 {
        let Some(d) = self.draws.get(self.next).copied() else {
            self.problems.push(format!(
                "draw {} requested, torch made only {}",
                self.next,
                self.draws.len()
            ));
            return lo;
        };
        self.next += 1;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
        if d[0] != kind || !close(lo, d[1]) || !close(hi, d[2]) {
            self.problems.push(format!(
                "draw {}: asked kind {kind} [{lo}, {hi}], torch drew {d:?}",
                self.next - 1
            ));
        }
        d[3]
    }
}

impl TransformRng for Replay {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.take(0.0, lo, hi)
    }
    fn randint(&mut self, lo: i64, hi: i64) -> i64 {
        self.take(1.0, lo as f64, hi as f64) as i64
    }
}

#[test]
fn matches_pil_and_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    run_oracle(dir.path());
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.path().join("expected.safetensors")).unwrap();
    let exp = Expected {
        st: SafeTensors::deserialize(&bytes).unwrap(),
    };
    let img_dir = dir.path().join("images");
    let mut c = Checks { failures: vec![] };

    let images = cases["images"].as_array().unwrap();
    let mut pil_decoded = HashMap::new();
    let (mut jpeg_max, mut resize_max, mut float_max, mut e2e_png_max, mut e2e_jpeg_max) =
        (0u8, 0u8, 0f32, 0f32, 0f32);
    println!("decode vs PIL (max |diff|, mean |diff|):");
    for case in images {
        let name = case["name"].as_str().unwrap();
        let is_jpeg = case["format"] == "jpeg";
        let path = img_dir.join(case["file"].as_str().unwrap());
        let pil = exp.image(&format!("decoded.{name}"));

        // 1. Decoding.
        let ours = match load_rgb(&path) {
            Ok(img) => img,
            Err(e) => {
                c.failures.push(format!("{name}: decode failed: {e}"));
                continue;
            }
        };
        let same_shape = (ours.width(), ours.height()) == (pil.width(), pil.height());
        c.check(same_shape, || {
            format!(
                "{name}: decoded {}x{}, PIL {}x{}",
                ours.width(),
                ours.height(),
                pil.width(),
                pil.height()
            )
        });
        if same_shape {
            let (max, mean) = max_abs_u8(ours.as_raw(), pil.as_raw());
            println!(
                "  {name:16} {:5} max {max:3} mean {mean:.4}",
                case["pil_mode"].as_str().unwrap()
            );
            if is_jpeg {
                jpeg_max = jpeg_max.max(max);
            }
            c.check(max == 0, || {
                format!("{name}: decode differs from PIL by max {max}, mean {mean}")
            });
        }

        // 2. Resize(224) on PIL's pixels: bit-exact.
        let (rw, rh) = resized_dims(pil.width(), pil.height(), 224);
        let resized = resize_bicubic(&pil, rw, rh);
        let want = exp.image(&format!("resized.{name}"));
        if (want.width(), want.height()) != (rw, rh) {
            c.failures.push(format!(
                "{name}: Resize(224) size {rw}x{rh}, torchvision {}x{}",
                want.width(),
                want.height()
            ));
        } else {
            let (max, _) = max_abs_u8(resized.as_raw(), want.as_raw());
            resize_max = resize_max.max(max);
            c.check(max == 0, || {
                format!("{name}: Resize(224) differs from PIL by up to {max}")
            });
        }

        // 3. Full test transform at each size, from PIL's pixels and end to end.
        for s in case["test_sizes"].as_array().unwrap() {
            let s = s.as_u64().unwrap() as usize;
            let want = exp.f32(&format!("test{s}.{name}"));
            let t = TestTransform::new(s).unwrap();
            let d = max_abs_f32(&t.apply(&pil), &want);
            float_max = float_max.max(d);
            c.check(d <= FLOAT_TOL, || {
                format!("{name}: test{s} transform differs by {d}")
            });
            let d = max_abs_f32(&t.apply(&ours), &want);
            if is_jpeg {
                e2e_jpeg_max = e2e_jpeg_max.max(d);
            } else {
                e2e_png_max = e2e_png_max.max(d);
            }
            c.check(d <= FLOAT_TOL, || {
                format!("{name}: end-to-end test{s} differs by {d}")
            });
        }
        pil_decoded.insert(name.to_string(), pil);
    }
    pil_decoded.insert("extreme".into(), exp.image("decoded.extreme"));

    // 4. Image.resize with explicit sizes and boxes.
    for sw in cases["sweep"].as_array().unwrap() {
        let k = sw["id"].as_u64().unwrap();
        let src = &pil_decoded[sw["image"].as_str().unwrap()];
        let size: Vec<usize> = sw["size"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let out = match sw["box"].as_array() {
            Some(b) => {
                let b: Vec<f32> = b.iter().map(|v| v.as_f64().unwrap() as f32).collect();
                resize_bicubic_box(src, [b[0], b[1], b[2], b[3]], size[0], size[1])
            }
            None => resize_bicubic(src, size[0], size[1]),
        };
        let want = exp.image(&format!("sweep.{k}"));
        let (max, _) = max_abs_u8(out.as_raw(), want.as_raw());
        resize_max = resize_max.max(max);
        c.check(max == 0, || {
            format!("sweep {k} ({sw}): differs from PIL by up to {max}")
        });
    }

    // 5. RandomResizedCrop + flip with torch's draws replayed.
    let train = TrainTransform::new(224).unwrap();
    let mut fallbacks = 0;
    for run in cases["rrc"].as_array().unwrap() {
        let k = run["id"].as_u64().unwrap();
        let img = &pil_decoded[run["image"].as_str().unwrap()];
        let flat = exp.f64(&format!("rrc.{k}.draws"));
        let draws: Vec<[f64; 4]> = flat
            .chunks_exact(4)
            .map(|d| [d[0], d[1], d[2], d[3]])
            .collect();
        fallbacks += usize::from(draws.len() == 21);
        let mut rng = Replay {
            draws,
            next: 0,
            problems: vec![],
        };
        let b = train.crop_box(img.width(), img.height(), &mut rng);
        let want_box: Vec<usize> = exp
            .i64(&format!("rrc.{k}.box"))
            .iter()
            .map(|&v| v as usize)
            .collect();
        let want_box = CropBox {
            top: want_box[0],
            left: want_box[1],
            height: want_box[2],
            width: want_box[3],
        };
        c.check(b == want_box, || {
            format!("rrc {k}: box {b:?}, torchvision {want_box:?}")
        });
        let crop = train.resized_crop(img, want_box);
        let (max, _) = max_abs_u8(
            crop.as_raw(),
            exp.image(&format!("rrc.{k}.resized")).as_raw(),
        );
        resize_max = resize_max.max(max);
        c.check(max == 0, || {
            format!("rrc {k}: resized crop differs from PIL by up to {max}")
        });
        // The whole augmentation again from the start of the draws, flip included.
        rng.next = 0;
        let out = train.apply(img, &mut rng);
        let d = max_abs_f32(&out, &exp.f32(&format!("rrc.{k}.train")));
        float_max = float_max.max(d);
        c.check(d <= FLOAT_TOL, || {
            format!("rrc {k}: train transform differs by {d}")
        });
        c.check(rng.next == rng.draws.len(), || {
            format!("rrc {k}: used {} of {} draws", rng.next, rng.draws.len())
        });
        for p in rng.problems {
            c.failures.push(format!("rrc {k}: {p}"));
        }
    }
    c.check(fallbacks >= 2, || {
        format!("only {fallbacks} RandomResizedCrop runs took the fallback")
    });

    // 6. CMYK -> RGB on every (C, K) pair.
    let (_, grid_in) = exp.u8("cmyk.in");
    let (_, grid_out) = exp.u8("cmyk.out");
    let bad = grid_in
        .chunks_exact(4)
        .zip(grid_out.chunks_exact(3))
        .filter(|(i, o)| cmyk_to_rgb([i[0], i[1], i[2], i[3]]) != [o[0], o[1], o[2]])
        .count();
    c.check(bad == 0, || {
        format!("CMYK->RGB differs from PIL on {bad} of 65536 pixels")
    });

    // 7. Broken files are errors that name the file.
    for e in cases["errors"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let kind = e["kind"].as_str().unwrap();
        match load_rgb(&img_dir.join(file)) {
            Ok(_) => c
                .failures
                .push(format!("{file}: decoded, expected a {kind} error")),
            Err(err) => {
                let got = match err {
                    ImageError::Unreadable(_) => "unreadable",
                    ImageError::Corrupt { .. } => "corrupt",
                    ImageError::Unsupported { .. } => "unsupported",
                };
                c.check(got == kind, || {
                    format!("{file}: {got} error ({err}), expected {kind}")
                });
                c.check(err.to_string().contains(file), || {
                    format!("{file}: message does not name the file: {err}")
                });
            }
        }
    }

    println!("max |diff|: JPEG decode {jpeg_max} levels; resize uint8 {resize_max}; float (PIL pixels) {float_max:e}; end-to-end PNG {e2e_png_max:e}, JPEG {e2e_jpeg_max:e}");
    assert!(
        c.failures.is_empty(),
        "{} checks failed:\n{}",
        c.failures.len(),
        c.failures.join("\n")
    );
}

//! A contact sheet of a shapes dataset: one test image per class, ten classes a row, as a PPM.
//!
//!     cargo run -p subpt-shapes --example sheet -- patterns patterns.ppm
use subpt_shapes::datasets::dataset;

const SCALE: usize = 3;
const CELL: usize = 34 * SCALE;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "shapes".into());
    let out = args.next().unwrap_or_else(|| format!("{name}.ppm"));
    let Some(d) = dataset(&name) else {
        eprintln!("error: no shapes dataset named {name:?}");
        std::process::exit(2);
    };
    let n = d.num_classes();
    let cols = 10usize;
    let (w, h) = (cols * CELL, n.div_ceil(cols) * CELL);
    let mut buf = vec![255u8; w * h * 3];
    for label in 0..n {
        // Seed 0, split 2 (test), the class's first image.
        let img = d.image(0, 2, label, 0);
        let (ox, oy) = ((label % cols) * CELL, (label / cols) * CELL);
        for y in 0..32 * SCALE {
            for x in 0..32 * SCALE {
                let p = &img.as_raw()[((y / SCALE) * 32 + x / SCALE) * 3..][..3];
                let o = ((oy + y) * w + ox + x) * 3;
                buf[o..o + 3].copy_from_slice(p);
            }
        }
    }
    let mut bytes = format!("P6\n{w} {h}\n255\n").into_bytes();
    bytes.extend(buf);
    if let Err(e) = std::fs::write(&out, bytes) {
        eprintln!("error: writing {out}: {e}");
        std::process::exit(1);
    }
    println!("{name}: {n} classes -> {out}");
}

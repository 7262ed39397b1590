//! Drawing one object: a 32 x 32 RGB image from its attributes and a seeded generator.
//!
//! Only IEEE-exact arithmetic (+, -, *, /, comparisons) is used, no `sin`, `ln` or `exp` from
//! the platform's maths library, so an image is the same bytes on every machine.
use crate::attributes::{Attributes, Background, Pattern, Shape, Size};
use subpt_imaging::image::RgbImage;
use subpt_imaging::transforms::{SeededRng, TransformRng};

/// Side of every image in pixels.
pub const SIDE: usize = 32;
/// Sub-samples per pixel side (anti-aliasing).
const SUPER: usize = 4;

/// The 10 vertices of a five-pointed star (outer radius 1, inner 0.4, first point up), image
/// coordinates (y grows downwards).
const STAR: [(f64, f64); 10] = [
    (0.0, -1.0),
    (0.235_114, -0.323_607),
    (0.951_057, -0.309_017),
    (0.380_423, 0.123_607),
    (0.587_785, 0.809_017),
    (0.0, 0.4),
    (-0.587_785, 0.809_017),
    (-0.380_423, 0.123_607),
    (-0.951_057, -0.309_017),
    (-0.235_114, -0.323_607),
];

/// Even-odd point-in-polygon test.
fn in_polygon(x: f64, y: f64, poly: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl Shape {
    /// Whether the point (x, y), in units of the object's half-size around its centre (y
    /// downwards), is inside the shape.
    pub fn contains(self, x: f64, y: f64) -> bool {
        let (ax, ay) = (x.abs(), y.abs());
        match self {
            Shape::Circle => x * x + y * y <= 1.0,
            Shape::Square => ax <= 0.85 && ay <= 0.85,
            Shape::Triangle => (-0.95..=0.8).contains(&y) && ax <= 0.95 * (y + 0.95) / 1.75,
            Shape::Diamond => ax + ay <= 1.0,
            Shape::Cross => (ax <= 0.32 && ay <= 0.95) || (ay <= 0.32 && ax <= 0.95),
            Shape::Ring => {
                let r2 = x * x + y * y;
                (0.3025..=1.0).contains(&r2)
            }
            Shape::Star => in_polygon(x, y, &STAR),
            // Circumradius 1, flat top and bottom: sqrt(3)/2 = 0.866 025.
            Shape::Hexagon => ay <= 0.866_025 && 1.732_051 * ax + ay <= 1.732_051,
            Shape::Heart => {
                // (u^2 + v^2 - 1)^3 - u^2 v^3 <= 0, v upwards, scaled to fit [-1, 1].
                let (u, v) = (x * 1.15, -y * 1.15 + 0.1);
                let a = u * u + v * v - 1.0;
                a * a * a - u * u * v * v * v <= 0.0
            }
            Shape::Crescent => {
                let (dx, dy) = (x - 0.45, y + 0.1);
                x * x + y * y <= 1.0 && dx * dx + dy * dy > 0.7225
            }
        }
    }
}

/// The jitter of one drawing, drawn from its generator in a fixed order.
struct Layout {
    cx: f64,
    cy: f64,
    half: f64,
    fg: [f64; 3],
    bg: [f64; 3],
    /// Standard deviation of per-pixel background noise (levels).
    noise: f64,
    /// Stripe orientation (vertical when true) and the phase of every pattern, in pixels.
    vertical: bool,
    phase: (f64, f64),
}

/// Approximately standard normal: Irwin-Hall with four uniforms (IEEE-exact arithmetic only).
fn gaussian(rng: &mut SeededRng) -> f64 {
    let s: f64 = (0..4).map(|_| rng.uniform(0.0, 1.0)).sum();
    (s - 2.0) * 1.732_050_807_568_877
}

fn layout(a: &Attributes, rng: &mut SeededRng) -> Layout {
    let half = match a.size {
        Size::Small => rng.uniform(7.0, 9.5),
        Size::Large => rng.uniform(11.0, 14.0),
    };
    let lo = half + 1.0;
    let hi = SIDE as f64 - half - 1.0;
    let cx = rng.uniform(lo, hi);
    let cy = rng.uniform(lo, hi);
    let base = a.colour.rgb();
    let mut fg = [0.0; 3];
    for (f, b) in fg.iter_mut().zip(base) {
        *f = (b + rng.uniform(-18.0, 18.0)).clamp(0.0, 255.0);
    }
    let (level, noise) = match a.background {
        Background::Dark => (rng.uniform(10.0, 45.0), 0.0),
        Background::Grey => (rng.uniform(95.0, 130.0), 0.0),
        Background::Noisy => (rng.uniform(25.0, 70.0), 38.0),
    };
    let mut bg = [0.0; 3];
    for b in bg.iter_mut() {
        *b = level + rng.uniform(-6.0, 6.0);
    }
    let vertical = rng.uniform(0.0, 1.0) < 0.5;
    let phase = (rng.uniform(0.0, 4.0), rng.uniform(0.0, 4.0));
    Layout {
        cx,
        cy,
        half,
        fg,
        bg,
        noise,
        vertical,
        phase,
    }
}

/// Whether the pattern shows the object's colour (else its shade) at image point (px, py).
fn lit(p: Pattern, l: &Layout, px: f64, py: f64) -> bool {
    let (u, v) = (px + l.phase.0, py + l.phase.1);
    // Position within a period, in [0, period).
    let frac = |t: f64, period: f64| t - period * ((t / period) as i64 as f64);
    match p {
        Pattern::Solid | Pattern::Outlined => true,
        Pattern::Striped => frac(if l.vertical { u } else { v }, 4.0) < 2.0,
        Pattern::Checked => (frac(u, 8.0) < 4.0) == (frac(v, 8.0) < 4.0),
        Pattern::Dotted => {
            let (du, dv) = (frac(u, 5.0) - 2.5, frac(v, 5.0) - 2.5);
            du * du + dv * dv <= 1.69
        }
    }
}

/// How a dataset's camera sees the world, beyond the objects themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Look {
    /// As the pretraining corpus is drawn.
    #[default]
    Plain,
    /// Channels mixed: a colour cast that moves every hue towards its neighbour.
    Tint,
    /// Objects turned by a multiple of 30 degrees.
    Rotated,
    /// Contrast cut to 40 % around mid grey.
    Faded,
    /// 2 x 2 blocks of equal pixels.
    Blocky,
}

/// (cos, sin) of 0, 30, ..., 330 degrees.
const TURNS: [(f64, f64); 12] = [
    (1.0, 0.0),
    (0.866_025_403_784_438_6, 0.5),
    (0.5, 0.866_025_403_784_438_6),
    (0.0, 1.0),
    (-0.5, 0.866_025_403_784_438_6),
    (-0.866_025_403_784_438_6, 0.5),
    (-1.0, 0.0),
    (-0.866_025_403_784_438_6, -0.5),
    (-0.5, -0.866_025_403_784_438_6),
    (0.0, -1.0),
    (0.5, -0.866_025_403_784_438_6),
    (0.866_025_403_784_438_6, -0.5),
];

/// Draws the object of `a`; `rng` supplies position, size, colour jitter, background and
/// pattern phase, so the same attributes and generator state give the same bytes.
pub fn draw(a: &Attributes, rng: &mut SeededRng) -> RgbImage {
    draw_with(a, Look::Plain, rng)
}

/// [`draw`] through a dataset's [`Look`].
pub fn draw_with(a: &Attributes, look: Look, rng: &mut SeededRng) -> RgbImage {
    let l = layout(a, rng);
    let (cos, sin) = if look == Look::Rotated {
        TURNS[rng.randint(1, 11) as usize]
    } else {
        (1.0, 0.0)
    };
    // The pattern's second tone is a pale tint of the colour (light grey for white objects),
    // so the silhouette stands out from dark and grey backgrounds alike.
    let shade = if a.colour == crate::attributes::Colour::White {
        [160.0, 160.0, 175.0]
    } else {
        l.fg.map(|c| c + (255.0 - c) * 0.6)
    };
    let mut out = Vec::with_capacity(SIDE * SIDE * 3);
    let step = 1.0 / SUPER as f64;
    for py in 0..SIDE {
        for px in 0..SIDE {
            let n = if l.noise > 0.0 {
                l.noise * gaussian(rng)
            } else {
                0.0
            };
            let bg = l.bg.map(|c| c + n);
            let mut acc = [0.0f64; 3];
            for sy in 0..SUPER {
                for sx in 0..SUPER {
                    let x = px as f64 + (sx as f64 + 0.5) * step;
                    let y = py as f64 + (sy as f64 + 0.5) * step;
                    let (dx, dy) = ((x - l.cx) / l.half, (y - l.cy) / l.half);
                    let (ox, oy) = (cos * dx + sin * dy, cos * dy - sin * dx);
                    let inside = a.shape.contains(ox, oy)
                        && !(a.pattern == Pattern::Outlined
                            && a.shape.contains(ox / 0.62, oy / 0.62));
                    let c = if !inside {
                        bg
                    } else if lit(a.pattern, &l, x, y) {
                        l.fg
                    } else {
                        shade
                    };
                    for k in 0..3 {
                        acc[k] += c[k];
                    }
                }
            }
            let n = (SUPER * SUPER) as f64;
            let mut c = acc.map(|v| v / n);
            match look {
                Look::Tint => {
                    c = [
                        0.65 * c[0] + 0.35 * c[2],
                        0.65 * c[1] + 0.35 * c[0],
                        0.65 * c[2] + 0.35 * c[1],
                    ]
                }
                Look::Faded => c = c.map(|v| 128.0 + (v - 128.0) * 0.4),
                _ => {}
            }
            out.extend(c.map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    if look == Look::Blocky {
        for y in 0..SIDE {
            for x in 0..SIDE {
                let src = ((y & !1) * SIDE + (x & !1)) * 3;
                let dst = (y * SIDE + x) * 3;
                for k in 0..3 {
                    out[dst + k] = out[src + k];
                }
            }
        }
    }
    RgbImage::from_raw(SIDE, SIDE, out).expect("SIDE * SIDE * 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Colour;

    fn attrs(shape: Shape, pattern: Pattern) -> Attributes {
        Attributes {
            shape,
            colour: Colour::Red,
            pattern,
            size: Size::Large,
            background: Background::Dark,
        }
    }

    #[test]
    fn shapes_cover_different_areas_and_hold_their_centre() {
        let area = |s: Shape| {
            let n = 200;
            let mut k = 0;
            for i in 0..n {
                for j in 0..n {
                    let x = -1.0 + 2.0 * (i as f64 + 0.5) / n as f64;
                    let y = -1.0 + 2.0 * (j as f64 + 0.5) / n as f64;
                    k += s.contains(x, y) as usize;
                }
            }
            k as f64 / (n * n) as f64
        };
        let areas: Vec<f64> = Shape::ALL.iter().map(|&s| area(s)).collect();
        for (s, a) in Shape::ALL.iter().zip(&areas) {
            assert!((0.15..0.85).contains(a), "{s:?} covers {a}");
        }
        for s in Shape::ALL {
            let centre = s.contains(0.0, 0.0);
            assert_eq!(
                centre,
                !matches!(s, Shape::Ring | Shape::Crescent),
                "{s:?} at the centre"
            );
        }
        // The triangle points up: its top row is narrower than its bottom row.
        assert!(Shape::Triangle.contains(0.0, -0.8) && !Shape::Triangle.contains(0.5, -0.6));
        assert!(Shape::Triangle.contains(0.7, 0.7));
    }

    #[test]
    fn drawing_is_a_pure_function_of_attributes_and_seed() {
        let a = attrs(Shape::Star, Pattern::Striped);
        let one = draw(&a, &mut SeededRng::for_item(7, 3));
        let two = draw(&a, &mut SeededRng::for_item(7, 3));
        let other = draw(&a, &mut SeededRng::for_item(7, 4));
        assert_eq!(one.as_raw(), two.as_raw());
        assert_ne!(one.as_raw(), other.as_raw());
        assert_eq!((one.width(), one.height()), (SIDE, SIDE));
    }

    #[test]
    fn the_object_shows_its_colour_and_the_outline_is_hollow() {
        let red_pixels = |img: &RgbImage| {
            img.as_raw()
                .chunks(3)
                .filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
                .count()
        };
        let solid = draw(
            &attrs(Shape::Square, Pattern::Solid),
            &mut SeededRng::new(1),
        );
        let hollow = draw(
            &attrs(Shape::Square, Pattern::Outlined),
            &mut SeededRng::new(1),
        );
        let (s, h) = (red_pixels(&solid), red_pixels(&hollow));
        assert!(s > 200, "a large solid square fills {s} pixels");
        assert!(h > 40 && h < s * 3 / 4, "the outline keeps {h} of {s}");
    }
}

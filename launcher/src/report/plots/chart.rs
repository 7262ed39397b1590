//! One line chart as SVG. Plotters lays out the frame, grid and tick labels; lines,
//! spread and markers are drawn in pixels, so that series can be offset sideways and
//! error bar caps keep one width whatever the scale.
use super::axis::Axis;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A mean and, when there were at least two seeds, its sample std.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub err: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
}

impl Marker {
    pub fn nth(i: usize) -> Self {
        [Self::Circle, Self::Triangle, Self::Square, Self::Diamond][i % 4]
    }
}

pub struct Line {
    pub name: String,
    /// Index into the palette; charts of one kind share it so a method keeps its colour.
    pub colour: usize,
    pub marker: Marker,
    pub dashed: bool,
    pub points: Vec<Point>,
}

/// How `Point::err` is drawn: bars suit a few x positions, bands a curve over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    Bars,
    Band,
}

pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
    pub spread: Spread,
    /// Lines under the legend saying what the spread or the points are.
    pub note: Option<String>,
}

/// matplotlib's tab10, the palette readers of ML papers already decode.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";
const CHART_W: u32 = 640;
const MIN_H: u32 = 440;
const LEGEND_FONT: f64 = 15.0;
const ROW: i32 = 20;
const SAMPLE: i32 = 30;
const PAD: i32 = 10;
/// Sideways offset between series with error bars, so bars at one x do not overlap.
const DODGE: i32 = 4;
const CAP: i32 = 4;
/// Beyond this many points a curve gets markers on every few only.
const MAX_MARKERS: usize = 15;

/// Width of `s` in pixels at plotters font `size`: plotters writes `size / 1.24` as the
/// SVG font size, and 0.62 em per character covers sans-serif text.
pub fn text_width(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size / 1.24 * 0.62).ceil() as i32
}

/// The y extent of every point with its spread, for choosing the axis.
pub fn extent(lines: &[Line]) -> Option<(f64, f64)> {
    let ys = lines.iter().flat_map(|l| {
        l.points.iter().flat_map(|p| {
            let e = p.err.unwrap_or(0.0);
            [p.y - e, p.y + e]
        })
    });
    ys.filter(|y| y.is_finite()).fold(None, |acc, y| match acc {
        None => Some((y, y)),
        Some((lo, hi)) => Some((y.min(lo), y.max(hi))),
    })
}

fn fail<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Renders the chart with its legend in a column to the right of the plot area, so no
/// entry can hide data.
pub fn render(c: &Chart) -> Result<String, String> {
    let widest = c
        .lines
        .iter()
        .map(|l| text_width(&l.name, LEGEND_FONT))
        .chain(notes(c).map(|n| text_width(n, LEGEND_FONT) - SAMPLE - PAD))
        .max()
        .unwrap_or(0);
    let legend_w = (PAD + SAMPLE + PAD + widest + 2 * PAD).max(80) as u32;
    let rows = (c.lines.len() + 1 + notes(c).count()) as i32;
    let height = MIN_H.max((60 + rows * ROW + 2 * PAD) as u32);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (CHART_W + legend_w, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let (left, right) = root.split_horizontally(CHART_W);
        let ((x0, x1), (y0, y1)) = (c.x.range, c.y.range);
        let mut chart = ChartBuilder::on(&left)
            .caption(&c.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(60)
            .build_cartesian_2d(c.x.clone(), c.y.clone())
            .map_err(fail)?;
        let x_label = |v: &f64| c.x.label_at(*v);
        let y_label = |v: &f64| c.y.label_at(*v);
        chart
            .configure_mesh()
            .x_desc(c.x.desc.as_str())
            .y_desc(c.y.desc.as_str())
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .bold_line_style(RGBColor(228, 228, 228))
            .axis_style(BLACK)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(fail)?;
        // Spread past the axis (a std above 100 %) is cut at the frame.
        let px = |x: f64, y: f64| chart.backend_coord(&(x, y.clamp(y0, y1)));
        // A closed box, its left and bottom edges on the axis lines plotters draws one
        // pixel outside the plot area, so they do not show as a double line.
        let ((l, t), (r, b)) = (px(x0, y1), px(x1, y0));
        root.draw(&Rectangle::new([(l - 1, t), (r, b + 1)], BLACK))
            .map_err(fail)?;
        let n = c.lines.len() as i32;
        let bars = c.spread == Spread::Bars
            && c.lines
                .iter()
                .any(|l| l.points.iter().any(|p| p.err.is_some()));
        let dodge = |i: usize| {
            if bars {
                (2 * i as i32 - (n - 1)) * DODGE / 2
            } else {
                0
            }
        };
        if c.spread == Spread::Band {
            for l in c
                .lines
                .iter()
                .filter(|l| l.points.iter().any(|p| p.err.is_some()))
            {
                let e = |p: &Point| p.err.unwrap_or(0.0);
                let upper = l.points.iter().map(|p| px(p.x, p.y + e(p)));
                let lower = l.points.iter().rev().map(|p| px(p.x, p.y - e(p)));
                let shape: Vec<_> = upper.chain(lower).collect();
                root.draw(&Polygon::new(shape, colour(l.colour).mix(0.18).filled()))
                    .map_err(fail)?;
            }
        }
        for (i, l) in c.lines.iter().enumerate() {
            let col = colour(l.colour);
            let d = dodge(i);
            let pts: Vec<(i32, i32)> = l
                .points
                .iter()
                .map(|p| {
                    let (x, y) = px(p.x, p.y);
                    (x + d, y)
                })
                .collect();
            path(&root, pts.clone(), l.dashed, col.stroke_width(2)).map_err(fail)?;
            if bars {
                for (p, &(x, _)) in l.points.iter().zip(&pts) {
                    let Some(s) = p.err else { continue };
                    let (top, bot) = (px(p.x, p.y + s).1, px(p.x, p.y - s).1);
                    let bar = vec![
                        (x - CAP, top),
                        (x + CAP, top),
                        (x, top),
                        (x, bot),
                        (x - CAP, bot),
                        (x + CAP, bot),
                    ];
                    root.draw(&PathElement::new(bar, col.stroke_width(1)))
                        .map_err(fail)?;
                }
            }
            let every = pts.len().div_ceil(MAX_MARKERS).max(1);
            for &q in pts.iter().step_by(every) {
                marker(&root, q, l.marker, col).map_err(fail)?;
            }
        }

        let top = chart.plotting_area().get_pixel_range().1.start + PAD;
        let text = |s: &str, y: i32, col: &RGBColor| {
            let style = (FONT, LEGEND_FONT)
                .into_font()
                .color(col)
                .pos(Pos::new(HPos::Left, VPos::Center));
            right.draw(&Text::new(s.to_string(), (PAD + SAMPLE + PAD, y), style))
        };
        for (i, l) in c.lines.iter().enumerate() {
            let y = top + i as i32 * ROW;
            let col = colour(l.colour);
            let sample = vec![(PAD, y), (PAD + SAMPLE, y)];
            path(&right, sample, l.dashed, col.stroke_width(2)).map_err(fail)?;
            marker(&right, (PAD + SAMPLE / 2, y), l.marker, col).map_err(fail)?;
            text(&l.name, y, &BLACK).map_err(fail)?;
        }
        let grey = RGBColor(90, 90, 90);
        for (i, note) in notes(c).enumerate() {
            let y = top + (c.lines.len() + 1 + i) as i32 * ROW;
            let style = (FONT, LEGEND_FONT)
                .into_font()
                .color(&grey)
                .pos(Pos::new(HPos::Left, VPos::Center));
            right
                .draw(&Text::new(note.to_string(), (PAD, y), style))
                .map_err(fail)?;
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

fn notes(c: &Chart) -> impl Iterator<Item = &str> {
    c.note.iter().flat_map(|n| n.lines())
}

fn path<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pts: Vec<(i32, i32)>,
    dashed: bool,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if dashed {
        area.draw(&DashedPathElement::new(pts, 7, 4, style))
    } else {
        area.draw(&PathElement::new(pts, style))
    }
}

fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    m: Marker,
    col: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let s = col.filled();
    match m {
        Marker::Circle => area.draw(&Circle::new((x, y), 4, s)),
        Marker::Triangle => area.draw(&TriangleMarker::new((x, y), 5, s)),
        Marker::Square => area.draw(&Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], s)),
        Marker::Diamond => area.draw(&Polygon::new(
            vec![(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)],
            s,
        )),
    }
}

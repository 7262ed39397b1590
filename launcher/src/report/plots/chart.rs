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

/// A horizontal line across a panel: a value the curves are read against (zero-shot CLIP).
pub struct Reference {
    pub name: String,
    pub y: f64,
}

/// One plot area of a chart.
pub struct Panel {
    /// Above the panel when the chart has more than one.
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
    pub references: Vec<Reference>,
}

impl Panel {
    /// A panel with no references.
    pub fn plain(x: Axis, y: Axis, lines: Vec<Line>) -> Self {
        Panel {
            title: String::new(),
            x,
            y,
            lines,
            references: Vec::new(),
        }
    }
}

/// Panels side by side with one legend on the right, shared by every panel (a series keeps
/// its name, colour and marker across panels).
pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
    pub spread: Spread,
    /// Lines under the legend saying what the spread or the points are.
    pub note: Option<String>,
}

/// Reference lines are drawn in this grey, dashed.
const REFERENCE: RGBColor = RGBColor(60, 60, 60);

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

/// The y extent of every point with its spread, and of every reference, for choosing the
/// axis.
pub fn extent(lines: &[Line], references: &[Reference]) -> Option<(f64, f64)> {
    let ys = lines
        .iter()
        .flat_map(|l| {
            l.points.iter().flat_map(|p| {
                let e = p.err.unwrap_or(0.0);
                [p.y - e, p.y + e]
            })
        })
        .chain(references.iter().map(|r| r.y));
    ys.filter(|y| y.is_finite()).fold(None, |acc, y| match acc {
        None => Some((y, y)),
        Some((lo, hi)) => Some((y.min(lo), y.max(hi))),
    })
}

fn fail<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// A legend entry: what a series looks like.
struct Entry<'a> {
    name: &'a str,
    colour: Option<usize>,
    marker: Option<Marker>,
    dashed: bool,
}

/// Legend entries: each series once (by name, first seen), then each reference once.
fn entries(c: &Chart) -> Vec<Entry<'_>> {
    let mut out: Vec<Entry> = Vec::new();
    for l in c.panels.iter().flat_map(|p| &p.lines) {
        if !out.iter().any(|e| e.name == l.name) {
            out.push(Entry {
                name: &l.name,
                colour: Some(l.colour),
                marker: Some(l.marker),
                dashed: l.dashed,
            });
        }
    }
    for r in c.panels.iter().flat_map(|p| &p.references) {
        if !out.iter().any(|e| e.name == r.name) {
            out.push(Entry {
                name: &r.name,
                colour: None,
                marker: None,
                dashed: true,
            });
        }
    }
    out
}

/// Renders the chart with its legend in a column to the right of the plot areas, so no
/// entry can hide data.
pub fn render(c: &Chart) -> Result<String, String> {
    let legend = entries(c);
    let widest = legend
        .iter()
        .map(|e| text_width(e.name, LEGEND_FONT))
        .chain(notes(c).map(|n| text_width(n, LEGEND_FONT) - SAMPLE - PAD))
        .max()
        .unwrap_or(0);
    let legend_w = (PAD + SAMPLE + PAD + widest + 2 * PAD).max(80) as u32;
    let rows = (legend.len() + 1 + notes(c).count()) as i32;
    let height = MIN_H.max((60 + rows * ROW + 2 * PAD) as u32);
    let panels_w = CHART_W * c.panels.len().max(1) as u32;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (panels_w + legend_w, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let (left, right) = root.split_horizontally(panels_w);
        let left = if c.panels.len() > 1 {
            left.titled(&c.title, (FONT, 20)).map_err(fail)?
        } else {
            left
        };
        let areas = left.split_evenly((1, c.panels.len().max(1)));
        let mut top = None;
        for (panel, area) in c.panels.iter().zip(&areas) {
            let title = if c.panels.len() > 1 {
                &panel.title
            } else {
                &c.title
            };
            let t = draw_panel(c, panel, title, area, &root)?;
            top.get_or_insert(t);
        }
        let top = top.unwrap_or(60) + PAD;
        let text = |s: &str, y: i32, col: &RGBColor| {
            let style = (FONT, LEGEND_FONT)
                .into_font()
                .color(col)
                .pos(Pos::new(HPos::Left, VPos::Center));
            right.draw(&Text::new(s.to_string(), (PAD + SAMPLE + PAD, y), style))
        };
        for (i, e) in legend.iter().enumerate() {
            let y = top + i as i32 * ROW;
            let col = e.colour.map_or(REFERENCE, colour);
            let sample = vec![(PAD, y), (PAD + SAMPLE, y)];
            let width = if e.colour.is_some() { 2 } else { 1 };
            path(&right, sample, e.dashed, col.stroke_width(width)).map_err(fail)?;
            if let Some(m) = e.marker {
                marker(&right, (PAD + SAMPLE / 2, y), m, col).map_err(fail)?;
            }
            text(e.name, y, &BLACK).map_err(fail)?;
        }
        let grey = RGBColor(90, 90, 90);
        for (i, note) in notes(c).enumerate() {
            let y = top + (legend.len() + 1 + i) as i32 * ROW;
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

/// Draws one panel into `area` (pixels drawn on `root`, whose coordinates they are in);
/// returns the top of its plot area.
fn draw_panel(
    c: &Chart,
    p: &Panel,
    title: &str,
    area: &DrawingArea<SVGBackend, Shift>,
    root: &DrawingArea<SVGBackend, Shift>,
) -> Result<i32, String> {
    let ((x0, x1), (y0, y1)) = (p.x.range, p.y.range);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(p.x.clone(), p.y.clone())
        .map_err(fail)?;
    let x_label = |v: &f64| p.x.label_at(*v);
    let y_label = |v: &f64| p.y.label_at(*v);
    chart
        .configure_mesh()
        .x_desc(p.x.desc.as_str())
        .y_desc(p.y.desc.as_str())
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
    for reference in &p.references {
        let y = px(x0, reference.y).1;
        path(root, vec![(l, y), (r, y)], true, REFERENCE.stroke_width(1)).map_err(fail)?;
    }
    let n = p.lines.len() as i32;
    let bars = c.spread == Spread::Bars
        && p.lines
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
        for l in p
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
    for (i, l) in p.lines.iter().enumerate() {
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
        path(root, pts.clone(), l.dashed, col.stroke_width(2)).map_err(fail)?;
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
            marker(root, q, l.marker, col).map_err(fail)?;
        }
    }
    Ok(chart.plotting_area().get_pixel_range().1.start)
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

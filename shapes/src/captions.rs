//! The captions the embedded CLIP learns from: a description of the drawn object that names its
//! shape and, each with its own chance, its colour, pattern, size and background, in words
//! drawn from each value's synonyms, inside one of CLIP's prompt templates.
use crate::attributes::{Attributes, Axis, Pattern};
use subpt_imaging::transforms::{SeededRng, TransformRng};

/// How descriptions are drawn.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionConfig {
    /// Chance that a word is the value's canonical one (else one of its synonyms).
    pub canonical_p: f64,
    pub colour_p: f64,
    pub pattern_p: f64,
    pub size_p: f64,
    pub background_p: f64,
    /// Chance that the named size, pattern and background come first, in a clause before the
    /// sentence ("on a noisy background, tiny: a photo of a red star."), so the words before
    /// the name carry meaning and the name sits at many positions.
    #[serde(default)]
    pub lead_p: f64,
    /// Chance of each of up to two neutral sentences before the caption ("here is one more.").
    #[serde(default)]
    pub preamble_p: f64,
}

impl Default for CaptionConfig {
    fn default() -> Self {
        CaptionConfig {
            canonical_p: 0.6,
            colour_p: 0.85,
            pattern_p: 0.6,
            size_p: 0.35,
            background_p: 0.35,
            lead_p: 0.0,
            preamble_p: 0.0,
        }
    }
}

fn pick<'a>(rng: &mut SeededRng, v: &[&'a str]) -> &'a str {
    v[rng.randint(0, v.len() as i64 - 1) as usize]
}

fn word(rng: &mut SeededRng, words: &[&'static str], canonical_p: f64) -> &'static str {
    if words.len() == 1 || rng.uniform(0.0, 1.0) < canonical_p {
        words[0]
    } else {
        pick(rng, &words[1..])
    }
}

/// Which attributes a description names (the shape always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mentions {
    pub colour: bool,
    pub pattern: bool,
    pub size: bool,
    pub background: bool,
}

impl Mentions {
    /// Whether an object with attributes `b` fits a description of `a` naming these.
    pub fn fits(&self, a: &Attributes, b: &Attributes) -> bool {
        a.shape == b.shape
            && (!self.colour || a.colour == b.colour)
            && (!self.pattern || a.pattern == b.pattern)
            && (!self.size || a.size == b.size)
            && (!self.background || a.background == b.background)
    }
}

/// A description of `a` ("small striped red star on a dark background"), drawn from `rng`.
pub fn describe(a: &Attributes, cfg: &CaptionConfig, rng: &mut SeededRng) -> String {
    describe_with(a, cfg, rng).0
}

/// [`describe`], and what the description names.
pub fn describe_with(
    a: &Attributes,
    cfg: &CaptionConfig,
    rng: &mut SeededRng,
) -> (String, Mentions) {
    let mut parts: Vec<&str> = Vec::with_capacity(5);
    let mut m = Mentions::default();
    let chance = |p: f64, rng: &mut SeededRng| rng.uniform(0.0, 1.0) < p;
    if chance(cfg.size_p, rng) {
        m.size = true;
        parts.push(word(rng, a.size.words(), cfg.canonical_p));
    }
    if chance(pattern_chance(cfg, a), rng) {
        m.pattern = true;
        parts.push(word(rng, a.pattern.words(), cfg.canonical_p));
    }
    if chance(cfg.colour_p, rng) {
        m.colour = true;
        parts.push(word(rng, a.colour.words(), cfg.canonical_p));
    }
    parts.push(word(rng, a.shape.words(), cfg.canonical_p));
    let mut text = parts.join(" ");
    if chance(cfg.background_p, rng) {
        m.background = true;
        let bg = word(rng, a.background.words(), cfg.canonical_p);
        text.push_str(&format!(" on a {bg} background"));
    }
    (text, m)
}

/// Neutral sentences that may open a caption.
const PREAMBLES: [&str; 8] = [
    "look at this.",
    "here is one more.",
    "from the collection.",
    "a new example.",
    "what we see here:",
    "the next image.",
    "taken in the studio.",
    "one of many.",
];

/// A whole caption: `describe` inside one of `templates` (each with one `{}`), and what it
/// names.
pub fn caption(
    a: &Attributes,
    cfg: &CaptionConfig,
    templates: &[&str],
    rng: &mut SeededRng,
) -> (String, Mentions) {
    let t = pick(rng, templates);
    let chance = |p: f64, rng: &mut SeededRng| rng.uniform(0.0, 1.0) < p;
    let (mut text, m) = if chance(cfg.lead_p, rng) {
        let (lead, name, m) = led(a, cfg, rng);
        let sentence = t.replace("{}", &name);
        match lead {
            Some(l) => (format!("{l}: {sentence}"), m),
            None => (sentence, m),
        }
    } else {
        let (d, m) = describe_with(a, cfg, rng);
        (t.replace("{}", &d), m)
    };
    for _ in 0..2 {
        if chance(cfg.preamble_p, rng) {
            text = format!("{} {text}", pick(rng, &PREAMBLES));
        }
    }
    (text, m)
}

/// The named size, pattern and background as a clause of their own, in random order
/// ("striped, on a dark background"), and the name ("red star") that the sentence after it
/// holds.
fn led(
    a: &Attributes,
    cfg: &CaptionConfig,
    rng: &mut SeededRng,
) -> (Option<String>, String, Mentions) {
    let chance = |p: f64, rng: &mut SeededRng| rng.uniform(0.0, 1.0) < p;
    let mut m = Mentions::default();
    let mut clauses: Vec<String> = Vec::new();
    if chance(cfg.size_p, rng) {
        m.size = true;
        clauses.push(word(rng, a.size.words(), cfg.canonical_p).to_string());
    }
    if chance(pattern_chance(cfg, a), rng) {
        m.pattern = true;
        clauses.push(word(rng, a.pattern.words(), cfg.canonical_p).to_string());
    }
    if chance(cfg.background_p, rng) {
        m.background = true;
        let bg = word(rng, a.background.words(), cfg.canonical_p);
        clauses.push(format!("on a {bg} background"));
    }
    // Fisher-Yates with the generator, so the order is a pure function of the seed.
    for i in (1..clauses.len()).rev() {
        clauses.swap(i, rng.randint(0, i as i64) as usize);
    }
    let mut name = String::new();
    if chance(cfg.colour_p, rng) {
        m.colour = true;
        name.push_str(word(rng, a.colour.words(), cfg.canonical_p));
        name.push(' ');
    }
    name.push_str(word(rng, a.shape.words(), cfg.canonical_p));
    let lead = (!clauses.is_empty()).then(|| clauses.join(", "));
    (lead, name, m)
}

/// Nouns that stand for any shape in captions that name one other attribute.
pub const ANY_SHAPE: [&str; 3] = ["object", "figure", "thing"];

/// One caption per value of `axis` ("a photo of a striped object.", "a photo of a star."),
/// value order, each with its own template and words.
pub fn axis_captions(
    axis: Axis,
    cfg: &CaptionConfig,
    templates: &[&str],
    rng: &mut SeededRng,
) -> Vec<String> {
    (0..axis.len())
        .map(|v| {
            let w = word(rng, axis.words(v), cfg.canonical_p);
            let noun = pick(rng, &ANY_SHAPE);
            let d = match axis {
                Axis::Shape => w.to_string(),
                Axis::Background => format!("{noun} on a {w} background"),
                _ => format!("{w} {noun}"),
            };
            pick(rng, templates).replace("{}", &d)
        })
        .collect()
}

/// How often a caption names the fill pattern: "solid" is the unmarked case, said less often.
fn pattern_chance(cfg: &CaptionConfig, a: &Attributes) -> f64 {
    if a.pattern == Pattern::Solid {
        cfg.pattern_p / 3.0
    } else {
        cfg.pattern_p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{Background, Colour, Shape, Size};

    #[test]
    fn descriptions_always_name_the_shape_and_follow_their_chances() {
        let a = Attributes {
            shape: Shape::Star,
            colour: Colour::Blue,
            pattern: Pattern::Striped,
            size: Size::Small,
            background: Background::Noisy,
        };
        let cfg = CaptionConfig::default();
        let mut rng = SeededRng::new(3);
        let (mut colour, mut bg, n) = (0, 0, 2000);
        for _ in 0..n {
            let d = describe(&a, &cfg, &mut rng);
            assert!(Shape::Star.words().iter().any(|w| d.contains(w)), "{d}");
            colour += Colour::Blue.words().iter().any(|w| d.contains(w)) as usize;
            bg += d.contains(" background") as usize;
        }
        let (c, b) = (colour as f64 / n as f64, bg as f64 / n as f64);
        assert!((c - cfg.colour_p).abs() < 0.03, "colour named in {c}");
        assert!(
            (b - cfg.background_p).abs() < 0.03,
            "background named in {b}"
        );
        let (t, m) = caption(&a, &cfg, &["a photo of a {}."], &mut rng);
        assert_eq!(m.background, t.contains(" background"));
        assert!(t.starts_with("a photo of a ") && t.ends_with('.'), "{t}");
    }
}

//! Downstream datasets of the world: each names its classes by the attributes that make them
//! (every combination of its axes, the first axis outermost in label order) and draws the
//! other attributes at random, image by image, from a stream of its own.
pub use crate::attributes::Axis;
use crate::attributes::{Attributes, Background, Colour, Pattern, Shape, Size};
use crate::render::{self, Look};
use subpt_imaging::image::RgbImage;
use subpt_imaging::transforms::{SeededRng, TransformRng};

/// A dataset of the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldDataset {
    pub id: &'static str,
    /// What makes a class, outermost first.
    pub axes: &'static [Axis],
    /// Stream key of its images (distinct per dataset, and from the pretraining corpus's).
    pub stream: u64,
    /// How its camera sees every image.
    pub look: Look,
    /// Attributes the class names leave open but each class of this dataset fixes, to a value
    /// drawn once per class from the dataset's stream: all its "red circles" are, say, small
    /// and striped, as a real dataset's classes have looks their names do not say.
    pub styles: &'static [Axis],
    /// A fill pattern every class carries that its name does not say, set by a rule on the
    /// base side: see [`PatternRule`].
    pub rule: Option<PatternRule>,
}

/// A cue a few shots teach that does not carry over. Each class of the first half of the labels
/// (base-to-novel's base classes) is drawn in the pattern its shape gives by a rule (pattern =
/// shape mod 5: every square striped, every triangle dotted; [`RuleKey`] names the others
/// measured); each class of the second half in a pattern drawn once for it. Training and
/// validation images always show their class's pattern, test images in `test_keep` percent of
/// cases, a pattern drawn at random in the rest.
///
/// One context shared by every class can learn the rule, since the text tower reads the shape
/// in each class name; a context that expects "squares are striped" then costs accuracy on the
/// test images that break the rule and on the novel classes, whose patterns follow none. Base
/// test accuracy rises while the context learns the classes and falls as it learns the rule;
/// novel accuracy falls below zero-shot CLIP's, whose class names say nothing of patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternRule {
    pub test_keep: u8,
    pub key: RuleKey,
}

/// What a base class's pattern follows. `shapes_ruled` keys it on the shape, a word every novel
/// name shares with some base name; the others are the levers that ask what that sharing does
/// (the split is by colour, so no novel name carries a base colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKey {
    /// shape mod 5: every square striped.
    Shape,
    /// colour mod 5: every red class striped; no novel name carries the key.
    Colour,
    /// (colour + shape) mod 5: a pairing the context must work out from both words.
    ColourPlusShape,
    /// (shape + colour mod 2) mod 5: the shape's rule, shifted by one for every other colour.
    ShapeColourParity,
}

impl RuleKey {
    pub const ALL: [RuleKey; 4] = [
        RuleKey::Shape,
        RuleKey::Colour,
        RuleKey::ColourPlusShape,
        RuleKey::ShapeColourParity,
    ];

    pub fn id(self) -> &'static str {
        match self {
            RuleKey::Shape => "shape",
            RuleKey::Colour => "colour",
            RuleKey::ColourPlusShape => "colour-plus-shape",
            RuleKey::ShapeColourParity => "shape-colour-parity",
        }
    }

    /// The pattern a base class of this colour and shape is drawn in.
    pub fn pattern(self, colour: usize, shape: usize) -> usize {
        let patterns = Pattern::ALL.len();
        match self {
            RuleKey::Shape => shape % patterns,
            RuleKey::Colour => colour % patterns,
            RuleKey::ColourPlusShape => (colour + shape) % patterns,
            RuleKey::ShapeColourParity => (shape + colour % 2) % patterns,
        }
    }
}

impl std::str::FromStr for RuleKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RuleKey::ALL
            .into_iter()
            .find(|k| k.id() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = RuleKey::ALL.iter().map(|k| k.id()).collect();
                format!("unknown rule key `{s}` ({})", known.join(", "))
            })
    }
}

impl WorldDataset {
    pub fn num_classes(&self) -> usize {
        self.axes.iter().map(|a| a.len()).product()
    }

    /// The axis values of class `label` (first axis outermost).
    fn values(&self, label: usize) -> Vec<(Axis, usize)> {
        let mut rest = label;
        let mut out: Vec<(Axis, usize)> = self
            .axes
            .iter()
            .rev()
            .map(|&a| {
                let v = rest % a.len();
                rest /= a.len();
                (a, v)
            })
            .collect();
        out.reverse();
        out
    }

    fn fixed(&self, label: usize, axis: Axis) -> Option<usize> {
        self.values(label)
            .into_iter()
            .find(|(a, _)| *a == axis)
            .map(|(_, v)| v)
    }

    /// The class's name: its fixed values' canonical words in description order
    /// (size, pattern, colour, shape), e.g. "striped red circle".
    pub fn class_name(&self, label: usize) -> String {
        let mut words: Vec<&str> = Vec::new();
        if let Some(v) = self.fixed(label, Axis::Size) {
            words.push(Size::ALL[v].word());
        }
        if let Some(v) = self.fixed(label, Axis::Pattern) {
            words.push(Pattern::ALL[v].word());
        }
        if let Some(v) = self.fixed(label, Axis::Colour) {
            words.push(Colour::ALL[v].word());
        }
        if let Some(v) = self.fixed(label, Axis::Shape) {
            words.push(Shape::ALL[v].word());
        }
        let mut name = words.join(" ");
        if let Some(v) = self.fixed(label, Axis::Background) {
            name.push_str(&format!(" on a {} background", Background::ALL[v].word()));
        }
        name
    }

    pub fn class_names(&self) -> Vec<String> {
        (0..self.num_classes())
            .map(|l| self.class_name(l))
            .collect()
    }

    /// The attributes of one image of class `label` in `split` (0 train, 1 val, 2 test): the
    /// class's values, the rest drawn.
    pub fn attributes(&self, label: usize, split: u64, rng: &mut SeededRng) -> Attributes {
        let mut a = random_attributes(rng);
        let keeps_pattern = match self.rule {
            // Drawn in every split, so that a change of `test_keep` moves no other draw.
            Some(rule) => {
                let draw = rng.randint(0, 99);
                split != TEST_SPLIT || draw < i64::from(rule.test_keep)
            }
            None => true,
        };
        let fixed = self
            .style(label)
            .into_iter()
            .filter(|&(axis, _)| keeps_pattern || axis != Axis::Pattern)
            .chain(self.values(label));
        for (axis, v) in fixed {
            match axis {
                Axis::Shape => a.shape = Shape::ALL[v],
                Axis::Colour => a.colour = Colour::ALL[v],
                Axis::Pattern => a.pattern = Pattern::ALL[v],
                Axis::Size => a.size = Size::ALL[v],
                Axis::Background => a.background = Background::ALL[v],
            }
        }
        a
    }

    /// The values class `label` fixes for its `styles` (one draw per class from the dataset's
    /// own stream, the same for every image and every data seed) and its rule's pattern.
    pub fn style(&self, label: usize) -> Vec<(Axis, usize)> {
        let mut rng = SeededRng::for_item(self.stream ^ 0x5354_594C_4553, label as u64);
        let mut out: Vec<(Axis, usize)> = self
            .styles
            .iter()
            .map(|&axis| (axis, rng.randint(0, axis.len() as i64 - 1) as usize))
            .collect();
        if let Some(rule) = self.rule {
            let pattern = match 2 * label < self.num_classes() {
                true => {
                    let named = |axis| {
                        self.fixed(label, axis)
                            .expect("a ruled dataset names its classes' colours and shapes")
                    };
                    rule.key.pattern(named(Axis::Colour), named(Axis::Shape))
                }
                false => rng.randint(0, Pattern::ALL.len() as i64 - 1) as usize,
            };
            out.push((Axis::Pattern, pattern));
        }
        out
    }

    /// The same dataset with its base side's pattern keyed on `key` (a ruled dataset only).
    pub fn with_rule_key(self, key: RuleKey) -> Option<WorldDataset> {
        let rule = self.rule?;
        Some(WorldDataset {
            rule: Some(PatternRule { key, ..rule }),
            ..self
        })
    }

    /// Image `index` of class `label` in split `split` (0 train, 1 val, 2 test) for `seed`.
    pub fn image(&self, seed: u64, split: u64, label: usize, index: usize) -> RgbImage {
        let key = (label as u64) << 32 | index as u64;
        let mut rng = SeededRng::for_item(stream_seed(seed, self.stream, split), key);
        let a = self.attributes(label, split, &mut rng);
        render::draw_with(&a, self.look, &mut rng)
    }
}

/// The split number of test images (0 train, 1 val): the one a [`PatternRule`] thins.
pub const TEST_SPLIT: u64 = 2;

/// The seed of one (data seed, stream, split) stream.
pub fn stream_seed(seed: u64, stream: u64, split: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(1_000_003) ^ split << 56
}

/// Attributes drawn uniformly over every value of every axis.
pub fn random_attributes(rng: &mut SeededRng) -> Attributes {
    fn one<T: Copy>(rng: &mut SeededRng, all: &[T]) -> T {
        all[rng.randint(0, all.len() as i64 - 1) as usize]
    }
    Attributes {
        shape: one(rng, Shape::ALL),
        colour: one(rng, Colour::ALL),
        pattern: one(rng, Pattern::ALL),
        size: one(rng, Size::ALL),
        background: one(rng, Background::ALL),
    }
}

/// The pretraining corpus's stream key.
pub const PRETRAIN_STREAM: u64 = 1;

/// The world's datasets: the colour x shape classes as the pretraining corpus draws them, in four
/// other looks (a camera's conditions: the analog of ImageNet's shifted copies) and with
/// class-specific styles or a pattern rule (`shapes_ruled`); and the pattern x shape classes.
pub const DATASETS: [WorldDataset; 8] = [
    world("shapes", &[Axis::Colour, Axis::Shape], 11, Look::Plain, &[]),
    world(
        "shapes_faded",
        &[Axis::Colour, Axis::Shape],
        12,
        Look::Faded,
        &[],
    ),
    world(
        "shapes_tinted",
        &[Axis::Colour, Axis::Shape],
        13,
        Look::Tint,
        &[],
    ),
    world(
        "shapes_blocky",
        &[Axis::Colour, Axis::Shape],
        14,
        Look::Blocky,
        &[],
    ),
    world(
        "shapes_rotated",
        &[Axis::Colour, Axis::Shape],
        15,
        Look::Rotated,
        &[],
    ),
    world(
        "shapes_styled",
        &[Axis::Colour, Axis::Shape],
        16,
        Look::Plain,
        &[Axis::Pattern, Axis::Size],
    ),
    WorldDataset {
        rule: Some(PatternRule {
            test_keep: 70,
            key: RuleKey::Shape,
        }),
        ..world(
            "shapes_ruled",
            &[Axis::Colour, Axis::Shape],
            18,
            Look::Plain,
            &[Axis::Size],
        )
    },
    world(
        "patterns",
        &[Axis::Pattern, Axis::Shape],
        17,
        Look::Plain,
        &[],
    ),
];

const fn world(
    id: &'static str,
    axes: &'static [Axis],
    stream: u64,
    look: Look,
    styles: &'static [Axis],
) -> WorldDataset {
    WorldDataset {
        id,
        axes,
        stream,
        look,
        styles,
        rule: None,
    }
}

/// Extra class names for NFL's few-shot runs (the paper's ImageNet-100 list plays this part on
/// real CLIP): "small red circle", "large orange circle", ... over every colour and shape, with
/// the size alternating, none of them a class of any dataset of the world.
pub fn extra_names() -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in Colour::ALL.iter().enumerate() {
        for (j, s) in Shape::ALL.iter().enumerate() {
            let size = Size::ALL[(i + j) % 2];
            out.push(format!("{} {} {}", size.word(), c.word(), s.word()));
        }
    }
    out
}

pub fn dataset(id: &str) -> Option<&'static WorldDataset> {
    DATASETS.iter().find(|d| d.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_enumerate_their_axes_first_outermost() {
        let d = dataset("shapes").unwrap();
        assert_eq!(d.num_classes(), 100);
        assert_eq!(d.class_name(0), "red circle");
        assert_eq!(d.class_name(1), "red square");
        assert_eq!(d.class_name(10), "orange circle");
        let t = dataset("patterns").unwrap();
        assert_eq!(t.class_name(11), "striped square");
        let names = d.class_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        let mut rng = SeededRng::new(0);
        for _ in 0..20 {
            let a = d.attributes(26, 2, &mut rng);
            assert_eq!((a.colour, a.shape), (Colour::Yellow, Shape::Star));
        }
    }

    #[test]
    fn the_pattern_rule_holds_on_base_training_images_and_breaks_on_test_and_novel() {
        let ruled = dataset("shapes_ruled").unwrap();
        assert_eq!(ruled.rule.unwrap().key, RuleKey::Shape);
        assert_eq!(
            dataset("shapes").unwrap().with_rule_key(RuleKey::Colour),
            None
        );
        for key in RuleKey::ALL {
            let d = ruled.with_rule_key(key).unwrap();
            the_rule_holds(&d, key);
        }
    }

    /// Base training images all carry their keyed pattern, base test images about
    /// `test_keep` of the time, novel classes one pattern each that follows no key.
    fn the_rule_holds(d: &WorldDataset, key: RuleKey) {
        let keep = d.rule.unwrap().test_keep as f64 / 100.0;
        let pattern_of = |label: usize, split: u64, index: u64| {
            let key = (label as u64) << 32 | index;
            let mut rng = SeededRng::for_item(stream_seed(0, d.stream, split), key);
            d.attributes(label, split, &mut rng).pattern
        };
        // Hand-written per key, not `RuleKey::pattern`, so that a slip there fails here.
        let rule = |label: usize| {
            let (colour, shape) = (label / 10, label % 10);
            Pattern::ALL[match key {
                RuleKey::Shape => shape % 5,
                RuleKey::Colour => colour % 5,
                RuleKey::ColourPlusShape => (colour + shape) % 5,
                RuleKey::ShapeColourParity => (shape + colour % 2) % 5,
            }]
        };
        let base = 0..d.num_classes() / 2;
        for label in base.clone() {
            for index in 0..20 {
                let p = pattern_of(label, 0, index);
                assert_eq!(
                    p,
                    rule(label),
                    "{key:?}: class {label} training image {index}"
                );
            }
        }
        // Test images keep the rule in about `test_keep` of cases, and in about a fifth of the
        // rest by chance.
        let (mut kept, mut n) = (0, 0);
        for label in base {
            for index in 0..40 {
                kept += usize::from(pattern_of(label, TEST_SPLIT, index) == rule(label));
                n += 1;
            }
        }
        let expected = keep + (1.0 - keep) / 5.0;
        assert!(
            (kept as f64 / n as f64 - expected).abs() < 0.05,
            "{key:?}: {kept} of {n}"
        );
        // Every novel class has one pattern of its own on its training images, and the rule
        // holds for no more of them than chance would give.
        let novel = d.num_classes() / 2..d.num_classes();
        let mut ruled = 0;
        for label in novel.clone() {
            let p = pattern_of(label, 0, 0);
            assert!((1..10).all(|i| pattern_of(label, 0, i) == p));
            ruled += usize::from(p == rule(label));
        }
        assert!(
            ruled <= novel.len() / 2,
            "{key:?}: {ruled} novel classes follow the rule"
        );
    }

    #[test]
    fn images_are_keyed_by_seed_split_class_and_index() {
        let d = dataset("shapes").unwrap();
        let a = d.image(0, 2, 5, 9);
        assert_eq!(a.as_raw(), d.image(0, 2, 5, 9).as_raw());
        for other in [
            d.image(1, 2, 5, 9),
            d.image(0, 0, 5, 9),
            d.image(0, 2, 5, 8),
        ] {
            assert_ne!(a.as_raw(), other.as_raw());
        }
    }
}

//! The captions a toy CLIP learns from. Fashion-MNIST has labels, not captions, so captions are
//! made from the label in the ways that give prompt tuning the behaviour it has on OpenAI's
//! CLIP: varied templates and synonyms (the text tower must read the name, not one sentence),
//! some captions with random continuous vectors in the template's place (so learned contexts
//! land where the tower has seen vectors, not on a razor edge), and attribute captions that make
//! words other than the class name matter.
use crate::data::fashion_mnist::CLASSNAMES;
use crate::data::PyRandom;
use crate::methods::zeroshot::imagenet_templates;

/// Other names of each class, label order; captions use the canonical name or one of these.
pub const SYNONYMS: [&[&str]; 10] = [
    &["t-shirt", "tee", "top", "tee shirt", "short sleeve shirt"],
    &["trousers", "pants", "slacks", "jeans", "leggings"],
    &[
        "sweater",
        "jumper",
        "knit sweater",
        "sweatshirt",
        "cardigan",
    ],
    &["gown", "frock", "sundress", "evening dress", "summer dress"],
    &["jacket", "overcoat", "parka", "raincoat", "winter coat"],
    &[
        "sandals",
        "flip flop",
        "slipper",
        "open shoe",
        "summer shoe",
    ],
    &[
        "button shirt",
        "blouse",
        "dress shirt",
        "collared shirt",
        "flannel shirt",
    ],
    &[
        "sneakers",
        "trainer",
        "running shoe",
        "sports shoe",
        "tennis shoe",
    ],
    &["handbag", "purse", "tote", "backpack", "satchel"],
    &["boot", "boots", "short boot", "chelsea boot", "bootie"],
];

/// Templates beyond CLIP's 80 ImageNet ones, in the plain style of product photos.
const EXTRA_TEMPLATES: [&str; 4] = [
    "a photo of a {}.",
    "a picture of a {}.",
    "{}.",
    "a product photo of a {}.",
];

/// The attribute words of attribute index `a` (bit 1: dark ink, bit 0: small ink area).
pub fn attribute_words(a: usize) -> &'static str {
    ["bright large", "bright small", "dark large", "dark small"][a & 3]
}

/// How captions are drawn.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CaptionConfig {
    /// Chance that a caption uses the canonical class name (else a synonym).
    pub canonical_p: f64,
    /// Chance that a class caption has random vectors in place of its template.
    pub context_p: f64,
    /// Most random vectors in such a caption (at least 1).
    pub max_context: usize,
    /// Range of the vectors' standard deviation.
    pub context_std: (f64, f64),
}

impl Default for CaptionConfig {
    fn default() -> Self {
        CaptionConfig {
            canonical_p: 0.4,
            context_p: 0.2,
            max_context: 16,
            context_std: (0.02, 0.1),
        }
    }
}

/// A caption: its text, and how many token slots after SOT take random vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    pub text: String,
    /// `Some((k, std))`: positions 1..=k are N(0, std^2) vectors instead of the "X" tokens.
    pub context: Option<(usize, f64)>,
}

pub struct CaptionSampler {
    templates: Vec<String>,
    config: CaptionConfig,
    rng: PyRandom,
}

impl CaptionSampler {
    pub fn new(config: CaptionConfig, seed: u64) -> Self {
        let mut templates: Vec<String> =
            imagenet_templates().iter().map(|t| t.to_string()).collect();
        templates.extend(EXTRA_TEMPLATES.iter().map(|t| t.to_string()));
        CaptionSampler {
            templates,
            config,
            rng: PyRandom::new(seed),
        }
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.rng.randbelow(v.len() as u64) as usize]
    }

    fn name(&mut self, class: usize) -> String {
        if self.rng.random() < self.config.canonical_p {
            CLASSNAMES[class].to_string()
        } else {
            self.pick(SYNONYMS[class]).to_string()
        }
    }

    fn template(&mut self) -> String {
        let i = self.rng.randbelow(self.templates.len() as u64) as usize;
        self.templates[i].clone()
    }

    /// One caption per class, label order.
    pub fn class_captions(&mut self) -> Vec<Caption> {
        (0..CLASSNAMES.len())
            .map(|c| {
                let name = self.name(c);
                if self.rng.random() < self.config.context_p {
                    let k = 1 + self.rng.randbelow(self.config.max_context.max(1) as u64) as usize;
                    let (lo, hi) = self.config.context_std;
                    let std = self.rng.uniform(lo, hi);
                    Caption {
                        text: format!("{}{name}.", "X ".repeat(k)),
                        context: Some((k, std)),
                    }
                } else {
                    Caption {
                        text: self.template().replace("{}", &name),
                        context: None,
                    }
                }
            })
            .collect()
    }

    /// One caption per (class, attribute), index `4 * class + attribute`.
    pub fn attribute_captions(&mut self) -> Vec<Caption> {
        let mut out = Vec::with_capacity(CLASSNAMES.len() * 4);
        for c in 0..CLASSNAMES.len() {
            for a in 0..4 {
                let name = format!("{} {}", attribute_words(a), self.name(c));
                out.push(Caption {
                    text: self.template().replace("{}", &name),
                    context: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_follow_the_config_and_the_seed() {
        let mut s = CaptionSampler::new(CaptionConfig::default(), 5);
        let mut contexts = 0;
        let mut canonical = 0;
        for _ in 0..200 {
            for (c, cap) in s.class_captions().iter().enumerate() {
                let named = std::iter::once(CLASSNAMES[c])
                    .chain(SYNONYMS[c].iter().copied())
                    .any(|n| cap.text.contains(n));
                assert!(named, "{cap:?} names class {c}");
                canonical += cap.text.contains(CLASSNAMES[c]) as usize;
                if let Some((k, std)) = cap.context {
                    contexts += 1;
                    assert!((1..=16).contains(&k) && (0.02..0.1).contains(&std));
                    assert!(cap.text.starts_with(&"X ".repeat(k)));
                }
            }
        }
        // 2000 captions: 20 % with vectors and >= 40 % canonical (synonyms may contain it).
        assert!((300..500).contains(&contexts), "{contexts}");
        assert!(canonical >= 700, "{canonical}");
        let attrs = s.attribute_captions();
        assert_eq!(attrs.len(), 40);
        assert!(
            attrs[4 * 5 + 3].text.contains("dark small"),
            "{:?}",
            attrs[23]
        );
        let a: Vec<_> = CaptionSampler::new(CaptionConfig::default(), 9).class_captions();
        let b: Vec<_> = CaptionSampler::new(CaptionConfig::default(), 9).class_captions();
        assert_eq!(a, b);
    }
}

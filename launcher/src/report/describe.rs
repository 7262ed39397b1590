//! How tables name what they hold: protocols (with the backbone their papers used), datasets
//! as the papers spell them, and the runs behind a table (weights, shots, seeds).
use super::table::Cell;
use std::collections::BTreeSet;
use subpt_trainer::data::DatasetName;
use subpt_trainer::engine::presets::{self, Protocol};
use subpt_trainer::engine::spec::RunSpec;

/// The protocol, whose it is, the shots it fixes and the backbone of its published numbers:
/// "SubPT's protocol (`base_to_novel`: 4 shots; published with RN50)".
pub fn protocol_phrase(p: Protocol) -> String {
    let whose = match p {
        Protocol::FewShot => "the few-shot protocol",
        Protocol::BaseToNovel => "SubPT's protocol",
        Protocol::BaseToNovelCocoop => "CoCoOp's protocol",
        Protocol::DomainGeneralization => "the domain-generalisation protocol",
    };
    let backbone = presets::protocol_backbone(p);
    match presets::protocol_shots(p) {
        Some(k) => format!("{whose} (`{p}`: {k} shots; published with {backbone})"),
        None => format!("{whose} (`{p}`; published with {backbone})"),
    }
}

/// A dataset as the papers' tables spell it ("average" for rows over datasets).
pub fn paper_dataset(id: &str) -> String {
    use DatasetName::*;
    let Ok(d) = id.parse::<DatasetName>() else {
        return match id {
            "average" => "Average".into(),
            other => other.into(),
        };
    };
    match d {
        Dtd => "DTD".into(),
        OxfordFlowers => "Flowers102".into(),
        ImageNetSketch => "ImageNet-Sketch".into(),
        ImageNetA => "ImageNet-A".into(),
        ImageNetR => "ImageNet-R".into(),
        other => other.info().config_name.into(),
    }
}

/// A dataset (or "average") as a cell: its id in CSV and Markdown, its paper name in LaTeX.
pub fn dataset_cell(id: &str) -> Cell {
    Cell::Name {
        plain: id.into(),
        paper: paper_dataset(id),
    }
}

/// What the runs behind a table were, for its caption.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    /// File names of the weights.
    pub weights: BTreeSet<String>,
    /// Shots and seeds of the runs that train (zero-shot CLIP reads neither).
    pub shots: BTreeSet<usize>,
    pub seeds: BTreeSet<u64>,
}

impl Runs {
    pub fn add(&mut self, spec: &RunSpec) {
        let file = spec.weights.file_name().map_or_else(
            || spec.weights.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        self.weights.insert(file);
        if spec.method.learns() {
            self.shots.insert(spec.shots);
            self.seeds.insert(spec.seed);
        }
    }

    /// "Our runs: weights `RN50.pt`; 4 shots; seeds 1, 2, 3." (`None` without runs).
    pub fn sentence(&self) -> Option<String> {
        if self.weights.is_empty() {
            return None;
        }
        let list = |items: Vec<String>| items.join(", ");
        let mut parts = vec![format!(
            "weights {}",
            list(self.weights.iter().map(|w| format!("`{w}`")).collect())
        )];
        if !self.shots.is_empty() {
            let n: Vec<String> = self.shots.iter().map(usize::to_string).collect();
            let unit = if self.shots.len() == 1 && self.shots.contains(&1) {
                "shot"
            } else {
                "shots"
            };
            parts.push(format!("{} {unit}", list(n)));
        }
        if !self.seeds.is_empty() {
            let unit = if self.seeds.len() == 1 {
                "seed"
            } else {
                "seeds"
            };
            let n: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
            parts.push(format!("{unit} {}", list(n)));
        }
        Some(format!("Our runs: {}.", parts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_and_datasets_read_as_in_the_papers() {
        assert_eq!(
            protocol_phrase(Protocol::BaseToNovel),
            "SubPT's protocol (`base_to_novel`: 4 shots; published with RN50)"
        );
        assert_eq!(
            protocol_phrase(Protocol::BaseToNovelCocoop),
            "CoCoOp's protocol (`base_to_novel_cocoop`: 16 shots; published with ViT-B/16)"
        );
        assert_eq!(
            protocol_phrase(Protocol::FewShot),
            "the few-shot protocol (`few_shot`; published with RN50)"
        );
        assert_eq!(paper_dataset("dtd"), "DTD");
        assert_eq!(paper_dataset("eurosat"), "EuroSAT");
        assert_eq!(paper_dataset("average"), "Average");
    }
}

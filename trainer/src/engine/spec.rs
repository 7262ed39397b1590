//! `RunSpec`: the whole truth of one benchmark cell. Everything that changes numbers is in it;
//! its hash names the output directory and the result embeds it.
use super::optim::SgdConfig;
use crate::clip::Precision;
use crate::data::{DatasetName, SubsampleClasses};
use crate::methods::prompt_learner::PromptConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use super::problems::Problem;
pub use crate::methods::Method;

/// An evaluation protocol of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Every dataset, every shot count, all classes.
    #[default]
    FewShot,
    /// SubPT's (and ProGrad's) base-to-novel: train on the base half with 4 shots (RN50 in the
    /// papers); test on base and new.
    BaseToNovel,
    /// CoCoOp's base-to-novel (KgCoOp's too): 16 shots (ViT-B/16 in the papers), each method
    /// with its own paper's schedule.
    BaseToNovelCocoop,
    /// The 4-shot model of the source dataset (ImageNet unless a grid says otherwise)
    /// evaluated on its shifted variants.
    DomainGeneralization,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::FewShot,
        Protocol::BaseToNovel,
        Protocol::BaseToNovelCocoop,
        Protocol::DomainGeneralization,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::FewShot => "few_shot",
            Protocol::BaseToNovel => "base_to_novel",
            Protocol::BaseToNovelCocoop => "base_to_novel_cocoop",
            Protocol::DomainGeneralization => "domain_generalization",
        }
    }

    /// Whether it trains on the base half and tests on base and new.
    pub fn is_base_to_novel(self) -> bool {
        matches!(self, Protocol::BaseToNovel | Protocol::BaseToNovelCocoop)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
                format!("unknown protocol `{s}` ({})", known.join(", "))
            })
    }
}

/// Where SubPT restarts after computing its subspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SubptInit {
    /// The stage-A run's initial context (the released code's behaviour, made explicit).
    #[default]
    Theta0,
    /// The context after epoch 1 (what the scripts intended with DIRECT_RESUME).
    Epoch1,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubptSpec {
    /// Subspace rank r (DIM).
    pub rank: usize,
    /// Early-stage length t_early (FINISH): the trajectory is ctx after epochs 1..t_early.
    pub early_epochs: usize,
    #[serde(default)]
    pub init: SubptInit,
    /// A stage-A trajectory file to reuse; without it the early stage is trained in-cell.
    #[serde(default)]
    pub trajectory: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NflSpec {
    /// Which names (see `NflNames`: spelled as the paper's scripts name the lists).
    pub names: crate::methods::nfl::NflNames,
    pub lambda: f64,
}

/// KgCoOp's knowledge term (Yao et al., 2023): `weight * (1 - mean_c cos(w_c, w_c^clip))`
/// over every trained class, `w^clip` zero-shot CLIP's features of `template`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KgSpec {
    /// W (8 in every script of the official code).
    pub weight: f64,
    /// The hand-written template of the targets (`{}` = the class name).
    pub template: String,
}

/// ProGrad (Zhu et al., 2023): the KL term against zero-shot CLIP's logits (with `template`)
/// at temperature T, and the rule that keeps only the part of cross-entropy's gradient that
/// does not conflict with the KL term's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProGradSpec {
    /// λ: how much of the conflicting component is removed (1; 0.8 in some few-shot runs).
    pub lambda: f64,
    /// T of the distillation (1 in every official config).
    pub temperature: f64,
    /// The teacher's hand-written template (`{}` = the class name).
    pub template: String,
}

/// The train-time view of each image (spec §2): Dassl's random resized crop and flip, or none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Random resized crop and flip; `false` shows every training image as the test view.
    pub enabled: bool,
    /// Area range of the random crop.
    pub scale: (f64, f64),
    pub flip_p: f64,
}

impl Default for Augment {
    /// Dassl's: scale (0.08, 1), flip with p = 0.5.
    fn default() -> Self {
        Augment {
            enabled: true,
            scale: (0.08, 1.0),
            flip_p: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub dataset: DatasetName,
    pub root: PathBuf,
    pub method: Method,
    pub shots: usize,
    pub seed: u64,
    /// Classes trained on: all, base or new.
    #[serde(default = "default_subsample")]
    pub subsample: SubsampleClasses,
    /// Class subsets evaluated on the test split (base-to-novel: ["base", "new"]).
    #[serde(default = "default_eval")]
    pub eval_subsets: Vec<SubsampleClasses>,
    pub weights: PathBuf,
    #[serde(default)]
    pub precision: Precision,
    #[serde(default)]
    pub prompt: PromptConfig,
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub augment: Augment,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_warmup_epochs")]
    pub warmup_epochs: usize,
    #[serde(default = "default_warmup_lr")]
    pub warmup_lr: f64,
    #[serde(default)]
    pub sgd: SgdConfig,
    #[serde(default)]
    pub subpt: Option<SubptSpec>,
    #[serde(default)]
    pub nfl: Option<NflSpec>,
    /// KgCoOp's term (KgCoOp methods only; left out of the id while unset, so the ids of
    /// specs written before it stay).
    #[serde(default)]
    pub kg: Option<KgSpec>,
    /// ProGrad's term and rule (ProGrad methods only; left out of the id while unset).
    #[serde(default)]
    pub prograd: Option<ProGradSpec>,
    /// Evaluate every k epochs (0 = only at the end) to record accuracy curves.
    #[serde(default)]
    pub eval_every: usize,
    /// Where frozen features are cached (shared by every cell).
    #[serde(default = "default_cache")]
    pub cache_dir: PathBuf,
    /// Evaluate a trained context (a `context.safetensors` written by another cell) on this
    /// dataset's test split instead of training: domain generalisation.
    #[serde(default)]
    pub evaluate_context: Option<PathBuf>,
    /// The protocol whose presets the spec started from (see `presets`). Not part of the
    /// id: a 4-shot few-shot cell and the domain-generalisation source model it equals are one
    /// run.
    #[serde(default)]
    pub protocol: Protocol,
}

pub(super) fn default_subsample() -> SubsampleClasses {
    SubsampleClasses::All
}
pub(super) fn default_eval() -> Vec<SubsampleClasses> {
    vec![SubsampleClasses::All]
}
pub(super) fn default_batch() -> usize {
    32
}
pub(super) fn default_lr() -> f64 {
    0.002
}
pub(super) fn default_warmup_epochs() -> usize {
    1
}
pub(super) fn default_warmup_lr() -> f64 {
    1e-5
}
/// The per-user feature cache: `$SUBPT_CACHE_DIR`, else `$XDG_CACHE_HOME/subpt-bench`, else
/// `~/.cache/subpt-bench`. Not under the working directory, so where a command runs does not
/// decide what it shares; sharing is safe anyway, as entries are keyed by content digests.
pub fn default_cache() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("SUBPT_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("subpt-bench")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/subpt-bench")))
        .unwrap_or_else(|| std::env::temp_dir().join("subpt-bench-cache"))
}

/// The settings (top-level fields, with everything under them) zero-shot CLIP does not read:
/// what [`RunSpec::reduced_to_what_it_reads`] resets, and what the report never labels a
/// zero-shot run with.
pub const ZERO_SHOT_UNREAD: [&str; 13] = [
    "shots",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "warmup_epochs",
    "warmup_lr",
    "sgd",
    "augment",
    "prompt",
    "subpt",
    "nfl",
    "eval_every",
];

impl RunSpec {
    /// Whether the run trains a context (zero-shot CLIP and evaluations of a trained context do
    /// not): the one spelling of "does this cell learn?".
    pub fn trains(&self) -> bool {
        self.method.learns() && self.evaluate_context.is_none()
    }

    /// The spec with every setting its run does not read put back to a fixed value. Zero-shot
    /// CLIP reads the weights, the precision and the dataset's classes and test items, not
    /// shots, seed, epochs or any training setting: a grid's 5 shot counts x 3 seeds are one
    /// zero-shot cell (shots 0, seed 0), and the report shows it beside every shot count.
    pub fn reduced_to_what_it_reads(mut self) -> Self {
        if !self.method.learns() && self.evaluate_context.is_none() {
            self.shots = 0;
            self.seed = 0;
            self.epochs = 0;
            self.batch_size = default_batch();
            self.lr = default_lr();
            self.warmup_epochs = default_warmup_epochs();
            self.warmup_lr = default_warmup_lr();
            self.sgd = SgdConfig::default();
            self.augment = Augment::default();
            self.prompt = PromptConfig::default();
            self.subpt = None;
            self.nfl = None;
            self.kg = None;
            self.prograd = None;
            self.eval_every = 0;
        }
        self
    }

    /// Stable id of the run (and the name of its cell directory): a digest of its canonical
    /// JSON without what does not change its numbers. The feature cache is left out (its
    /// entries are content-addressed), and of the trained files it reads (a SubPT trajectory,
    /// an evaluated context) only the last two components count: `<cell id>/<file>`, which
    /// names the producing cell whichever directory the results live in. The content of those
    /// files is part of the result's identity (`engine::inputs`), not of the id.
    pub fn hash(&self) -> String {
        self.hash_with(true)
    }

    /// The id results written before ids left out the data root and the weights' directory
    /// were stored under: still accepted as a record's `spec_hash`, so their tables stay
    /// readable (the cells themselves are redone under today's ids).
    pub fn legacy_hash(&self) -> String {
        self.hash_with(false)
    }

    fn hash_with(&self, content_addressed: bool) -> String {
        let mut v = serde_json::to_value(self).expect("specs serialise");
        let tail = |p: &Path| {
            let parts: Vec<_> = p.components().collect();
            let from = parts.len().saturating_sub(2);
            parts[from..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("cache_dir");
            o.remove("protocol");
            // Settings added after ids were first published count only once set, so every
            // earlier id (and the results stored under it) stays.
            for k in ["kg", "prograd"] {
                if o.get(k).is_some_and(serde_json::Value::is_null) {
                    o.remove(k);
                }
            }
            if let Some(p) = o.get_mut("prompt").and_then(|p| p.as_object_mut()) {
                if p.get("init_in_last_slots") == Some(&serde_json::Value::Bool(false)) {
                    p.remove("init_in_last_slots");
                }
            }
            // Where the data sits is not what it is: the identity holds every image's digest,
            // so a moved or symlinked root is the same run. The weights keep their file name,
            // which tells apart the files of a grid's weights axis; their bytes are in the
            // identity too.
            if content_addressed {
                o.remove("root");
                let name = self.weights.file_name().map(|n| n.to_string_lossy());
                o.insert("weights".into(), name.unwrap_or_default().into());
            }
            if let Some(c) = &self.evaluate_context {
                o.insert("evaluate_context".into(), tail(c).into());
            }
            if let Some(t) = self.subpt.as_ref().and_then(|s| s.trajectory.as_deref()) {
                o["subpt"]["trajectory"] = tail(t).into();
            }
        }
        crate::digest::digest_json(&v)[..16].to_string()
    }

    /// What the run is, for a person reading a list: `dataset method K-shot seed S`, and the
    /// trained class subset when it is not all of them.
    pub fn describe(&self) -> String {
        let mut d = format!(
            "{} {} {}-shot seed {}",
            self.dataset, self.method, self.shots, self.seed
        );
        if self.subsample != SubsampleClasses::All {
            d.push_str(&format!(" ({})", self.subsample));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cache_does_not_depend_on_the_working_directory() {
        let c = default_cache();
        assert!(c.is_absolute(), "{}", c.display());
        assert!(
            c.ends_with("subpt-bench")
                || c.ends_with("subpt-bench-cache")
                || std::env::var_os("SUBPT_CACHE_DIR").is_some()
        );
    }

    #[test]
    fn the_id_leaves_out_where_data_weights_cache_and_results_live() {
        let mut a = crate::engine::presets::preset(
            crate::engine::presets::Protocol::FewShot,
            DatasetName::EuroSat,
            "d".into(),
            Method::CoopSub,
            4,
            1,
            "w".into(),
        );
        a.subpt.as_mut().unwrap().trajectory = Some("runs/abc/trajectory.safetensors".into());
        let mut b = a.clone();
        b.cache_dir = "/elsewhere".into();
        b.subpt.as_mut().unwrap().trajectory = Some("/moved/abc/trajectory.safetensors".into());
        b.root = "/mnt/other/d".into();
        b.weights = "/models/w".into();
        assert_eq!(a.hash(), b.hash());
        let mut w = a.clone();
        w.weights = "w2".into();
        assert_ne!(a.hash(), w.hash(), "another weights file of the axis");
        // Another producing cell, or another setting, is another run.
        b.subpt.as_mut().unwrap().trajectory = Some("runs/abd/trajectory.safetensors".into());
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.lr = 0.01;
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn zero_shot_ids_hold_only_what_zero_shot_clip_reads() {
        let preset = |m: Method, shots: usize, seed: u64| {
            crate::engine::presets::preset(
                crate::engine::presets::Protocol::FewShot,
                DatasetName::EuroSat,
                "d".into(),
                m,
                shots,
                seed,
                "w".into(),
            )
        };
        let zs = preset(Method::Zsclip, 1, 1).reduced_to_what_it_reads();
        // Every unread setting changed at once: the same cell.
        let mut other = preset(Method::Zsclip, 16, 3);
        other.lr = 0.1;
        other.epochs = 7;
        other.batch_size = 4;
        other.prompt.n_ctx = 4;
        other.augment.flip_p = 0.0;
        other.sgd.momentum = 0.0;
        other.eval_every = 2;
        other.warmup_epochs = 0;
        other.warmup_lr = 0.5;
        assert_eq!(other.reduced_to_what_it_reads().hash(), zs.hash());
        // Each reset field is one the report never labels zero-shot runs with.
        let fields = serde_json::to_value(&zs).unwrap();
        for f in ZERO_SHOT_UNREAD {
            assert!(fields.get(f).is_some(), "{f} is not a spec field");
        }
        // What it reads still tells cells apart.
        let mut half = zs.clone();
        half.subsample = SubsampleClasses::Base;
        let mut fp16 = zs.clone();
        fp16.precision = Precision::Fp16;
        for s in [half, fp16] {
            assert_ne!(s.reduced_to_what_it_reads().hash(), zs.hash());
        }
        // A method that learns keeps its settings.
        let coop = preset(Method::Coop, 4, 2);
        assert_eq!(coop.clone().reduced_to_what_it_reads().hash(), coop.hash());
    }

    #[test]
    fn method_names_are_their_serde_names() {
        for m in Method::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
        }
    }

    /// Settings added later count in the id only once set: every earlier id stays, and a
    /// method that needs them cannot run without them.
    #[test]
    fn later_settings_leave_earlier_ids_alone() {
        let p = |m: Method| {
            crate::engine::presets::preset(
                crate::engine::presets::Protocol::BaseToNovel,
                DatasetName::Dtd,
                "d".into(),
                m,
                4,
                1,
                "w".into(),
            )
        };
        let coop = p(Method::CoopSubNfl);
        let mut old = serde_json::to_value(&coop).unwrap();
        let o = old.as_object_mut().unwrap();
        assert!(o.remove("kg").unwrap().is_null() && o.remove("prograd").unwrap().is_null());
        o["prompt"]
            .as_object_mut()
            .unwrap()
            .remove("init_in_last_slots");
        let old: RunSpec = serde_json::from_value(old).unwrap();
        assert_eq!(old.hash(), coop.hash());
        let kg = p(Method::Kgcoop);
        let mut w = kg.clone();
        w.kg.as_mut().unwrap().weight = 4.0;
        assert_ne!(w.hash(), kg.hash());
        let mut last = p(Method::Prograd);
        let id = last.hash();
        last.prompt.init_in_last_slots = false;
        assert_ne!(last.hash(), id);
        let mut missing = kg.clone();
        missing.kg = None;
        assert_eq!(missing.problems()[0].key, "kg");
        let mut missing = p(Method::ProgradSub);
        missing.prograd = None;
        assert_eq!(missing.problems()[0].key, "prograd");
        let mut bad = p(Method::Prograd);
        bad.prograd.as_mut().unwrap().temperature = 0.0;
        bad.prompt.n_ctx = 2;
        let keys: Vec<_> = bad.problems().iter().map(|p| p.key).collect();
        assert_eq!(keys, ["prograd.temperature", "prompt.n_ctx"]);
    }
}

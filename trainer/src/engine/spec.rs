//! `RunSpec`: the whole truth of one benchmark cell. Everything that changes numbers is in it;
//! its hash names the output directory and the result embeds it.
use super::optim::SgdConfig;
use crate::clip::Precision;
use crate::data::{DatasetName, SubsampleClasses};
use crate::methods::prompt_learner::PromptConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::methods::Method;

/// An evaluation protocol of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Every dataset, every shot count, all classes.
    #[default]
    FewShot,
    /// Train on the base half with 4 shots; test on base and new.
    BaseToNovel,
    /// The 4-shot model of the source dataset (ImageNet unless a grid says otherwise)
    /// evaluated on its shifted variants.
    DomainGeneralization,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [
        Protocol::FewShot,
        Protocol::BaseToNovel,
        Protocol::DomainGeneralization,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::FewShot => "few_shot",
            Protocol::BaseToNovel => "base_to_novel",
            Protocol::DomainGeneralization => "domain_generalization",
        }
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
                format!("unknown protocol `{s}` (few_shot, base_to_novel, domain_generalization)")
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

/// A setting that cannot make a meaningful result: the field's dotted path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: &'static str,
    pub message: String,
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
            self.eval_every = 0;
        }
        self
    }

    /// The settings of this spec that cannot make a meaningful result (a negative learning
    /// rate, no epochs for a method that learns, a subspace wider than its trajectory, ...).
    /// Grids refuse them at parse time and in `--dry-run`, `train` before it starts, and a
    /// cell before it reads any data.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &'static str, message: String| out.push(Problem { key, message });
        let learns = self.trains();
        if self.batch_size == 0 {
            bad("batch_size", "must be at least 1".into());
        }
        if learns {
            if !(self.lr.is_finite() && self.lr > 0.0) {
                bad("lr", format!("{} is not a positive learning rate", self.lr));
            }
            if !(self.warmup_lr.is_finite() && self.warmup_lr >= 0.0) {
                bad(
                    "warmup_lr",
                    format!("{} is not a learning rate", self.warmup_lr),
                );
            }
            if self.epochs == 0 {
                bad(
                    "epochs",
                    format!(
                        "{} learns its context: it needs at least 1 epoch",
                        self.method
                    ),
                );
            }
            if self.shots == 0 {
                bad("shots", "a method that learns needs at least 1 shot".into());
            }
            if self.prompt.ctx_init.is_none() && self.prompt.n_ctx == 0 {
                bad(
                    "prompt.n_ctx",
                    "0 context vectors leave nothing to learn".into(),
                );
            }
            if self
                .prompt
                .ctx_init
                .as_deref()
                .is_some_and(|w| w.trim().is_empty())
            {
                bad(
                    "prompt.ctx_init",
                    "an empty initialisation has no words".into(),
                );
            }
        }
        if let Some(sub) = self
            .subpt
            .as_ref()
            .filter(|_| learns && self.method.uses_subspace())
        {
            if sub.early_epochs < 2 {
                bad(
                    "subpt.early_epochs",
                    format!(
                        "t_early = {}: a trajectory of fewer than 2 contexts spans no subspace",
                        sub.early_epochs
                    ),
                );
            }
            if sub.rank == 0 || sub.rank > sub.early_epochs {
                bad(
                    "subpt.rank",
                    format!(
                        "r = {} must be between 1 and t_early = {} (the trajectory's length)",
                        sub.rank, sub.early_epochs
                    ),
                );
            }
        }
        if let Some(nfl) = self.nfl.as_ref().filter(|_| learns) {
            if !(nfl.lambda.is_finite() && nfl.lambda >= 0.0) {
                bad("nfl.lambda", format!("{} is not a loss weight", nfl.lambda));
            }
        }
        out
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
    fn problems_name_the_settings_that_cannot_make_a_result() {
        let ok = crate::engine::presets::preset(
            crate::engine::presets::Protocol::FewShot,
            DatasetName::EuroSat,
            "d".into(),
            Method::CoopSubNfl,
            1,
            1,
            "w".into(),
        );
        assert_eq!(ok.problems(), []);
        let keys = |s: &RunSpec| s.problems().iter().map(|p| p.key).collect::<Vec<_>>();
        let mut s = ok.clone();
        s.lr = -0.5;
        s.batch_size = 0;
        assert_eq!(keys(&s), ["batch_size", "lr"]);
        let mut s = ok.clone();
        s.epochs = 0;
        assert!(keys(&s).contains(&"epochs"));
        let mut s = ok.clone();
        s.prompt.n_ctx = 0;
        assert_eq!(keys(&s), ["prompt.n_ctx"]);
        let mut s = ok.clone();
        s.subpt.as_mut().unwrap().rank = 11;
        assert_eq!(keys(&s), ["subpt.rank"]);
        let mut s = ok.clone();
        s.nfl.as_mut().unwrap().lambda = f64::NAN;
        assert_eq!(keys(&s), ["nfl.lambda"]);
        // Zero-shot CLIP learns nothing: its epochs and learning rate mean nothing to it.
        let mut z = ok.clone();
        z.method = Method::Zsclip;
        z.epochs = 0;
        z.lr = 0.0;
        assert_eq!(keys(&z), Vec::<&str>::new());
    }

    #[test]
    fn method_names_are_their_serde_names() {
        for m in Method::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
        }
    }
}

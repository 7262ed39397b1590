//! The prompt-learning methods, one file each, and the table every other part reads.
//!
//! Each method is a unit struct implementing [`MethodDef`] (its name, what it trains, where
//! its trajectory comes from and how it trains); [`def`] maps every [`Method`] to its struct
//! with an exhaustive match, so a method missing from the table does not compile, and
//! `Method`'s serde names (what grids, specs and cell ids spell) reject any other name before
//! anything runs. Adding a method: a file here, a variant of [`Method`] and its line in [`def`],
//! and its preset row in `engine/presets.rs`.
pub mod cocoop;
pub mod coop;
pub mod coop_nfl;
pub mod coop_sub;
pub mod coop_sub_nfl;
pub mod kgcoop;
pub mod kgcoop_nfl;
pub mod kgcoop_sub;
pub mod learner;
pub mod nfl;
pub mod prograd;
pub mod prograd_sub;
pub mod prompt_learner;
pub mod subspace;
pub mod zeroshot;

use crate::clip::tokenizer::Tokenizer;
use crate::comm::Communicator;
use crate::data::DatasetSplits;
use crate::engine::error::RunError;
use crate::engine::eval::EvalSet;
use crate::engine::result::CurvePoint;
use crate::engine::spec::RunSpec;
use crate::features::Frozen;
use crate::store::CellDir;
use learner::Learner;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use subspace::SubspaceSummary;

/// A method, by the name specs, grids and cell ids spell (`snake_case`: `coop_sub_nfl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Zsclip,
    Coop,
    CoopNfl,
    CoopSub,
    CoopSubNfl,
    Cocoop,
    Kgcoop,
    KgcoopNfl,
    KgcoopSub,
    Prograd,
    ProgradSub,
}

impl Method {
    /// Every method: the paper's, then the other remedies of its period with their combinations.
    pub const ALL: [Method; 11] = [
        Method::Zsclip,
        Method::Coop,
        Method::CoopNfl,
        Method::CoopSub,
        Method::CoopSubNfl,
        Method::Cocoop,
        Method::Kgcoop,
        Method::KgcoopNfl,
        Method::KgcoopSub,
        Method::Prograd,
        Method::ProgradSub,
    ];

    /// Its definition in the method table (`methods::def`).
    pub fn def(self) -> &'static dyn MethodDef {
        def(self)
    }

    /// The name grids, flags and result files use.
    pub fn name(self) -> &'static str {
        self.def().name()
    }

    /// The name as the papers write it.
    pub fn paper_name(self) -> &'static str {
        self.def().paper_name()
    }

    /// Whether the method trains anything (zero-shot CLIP does not).
    pub fn learns(self) -> bool {
        self.def().learns()
    }

    pub fn uses_nfl(self) -> bool {
        self.def().uses_nfl()
    }

    pub fn uses_subspace(self) -> bool {
        self.def().uses_subspace()
    }

    pub fn uses_kg(self) -> bool {
        self.def().uses_kg()
    }

    pub fn uses_prograd(self) -> bool {
        self.def().uses_prograd()
    }

    /// The method whose trajectory a SubPT method projects onto.
    pub fn trajectory_source(self) -> Option<Method> {
        self.def().trajectory_source()
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            let known: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("unknown method `{s}` ({})", known.join(", "))
        })
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a cell's training reads: the frozen CLIP, the cell's data, its caches and its group.
pub struct TrainCx<'a> {
    pub spec: &'a RunSpec,
    /// The frozen CLIP, the feature cache and the weights' digest.
    pub frozen: Frozen<'a>,
    pub tok: &'a Tokenizer,
    /// Every class's lists with the few-shot subset in place (NFL's novel names come from it).
    pub drawn: &'a DatasetSplits,
    /// The trained class subset.
    pub train_split: &'a DatasetSplits,
    pub eval_sets: &'a [EvalSet],
    pub comm: &'a dyn Communicator,
    /// Where the trained files go (rank 0 writes them).
    pub store: &'a CellDir,
}

/// What training leaves for evaluation and the result.
#[derive(Default)]
pub struct Trained {
    /// What the cell evaluates; `None` for zero-shot CLIP (templates, no context).
    pub learner: Option<Box<dyn Learner>>,
    pub curves: Vec<CurvePoint>,
    /// SHA-256 of each file written, by file name.
    pub outputs: BTreeMap<String, String>,
    pub subspace: Option<SubspaceSummary>,
}

/// One method, as the rest of the code sees it.
pub trait MethodDef: Sync {
    /// The name grids, flags and result files use (`Method`'s serde name).
    fn name(&self) -> &'static str;
    /// The name as the papers write it (tables meant for a paper: "SubPT+NFL", "KgCoOp").
    fn paper_name(&self) -> &'static str;
    /// Whether it trains anything (zero-shot CLIP does not).
    fn learns(&self) -> bool {
        true
    }
    /// Whether NFL's loss is part of it.
    fn uses_nfl(&self) -> bool {
        false
    }
    /// Whether it projects its gradients onto a subspace of a trajectory (SubPT).
    fn uses_subspace(&self) -> bool {
        false
    }
    /// Whether KgCoOp's knowledge term is part of it.
    fn uses_kg(&self) -> bool {
        false
    }
    /// Whether ProGrad's KL term and gradient rule are part of it.
    fn uses_prograd(&self) -> bool {
        false
    }
    /// The method whose early trajectory its subspace is fitted on.
    fn trajectory_source(&self) -> Option<Method> {
        None
    }
    /// The batch terms it adds to cross-entropy in the CoOp family's training (KgCoOp's,
    /// ProGrad's KL term), for the cell `cx` and its trained `classnames`.
    fn prompt_terms(
        &self,
        _cx: &TrainCx,
        _classnames: &[String],
    ) -> Result<Vec<Box<dyn learner::PromptTerm>>, RunError> {
        Ok(Vec::new())
    }
    /// The rule that turns its terms' gradients into the update's (ProGrad's), applied before
    /// SubPT's projection.
    fn gradient_rule(
        &self,
        _spec: &RunSpec,
    ) -> Result<Option<Box<dyn learner::GradientRule>>, RunError> {
        Ok(None)
    }
    /// Trains on `cx` (every rank of the cell's group calls this).
    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError>;
}

/// The table: every method's definition.
pub fn def(m: Method) -> &'static dyn MethodDef {
    match m {
        Method::Zsclip => &zeroshot::ZeroShot,
        Method::Coop => &coop::Coop,
        Method::CoopNfl => &coop_nfl::CoopNfl,
        Method::CoopSub => &coop_sub::CoopSub,
        Method::CoopSubNfl => &coop_sub_nfl::CoopSubNfl,
        Method::Cocoop => &cocoop::CoCoOpMethod,
        Method::Kgcoop => &kgcoop::Kgcoop,
        Method::KgcoopNfl => &kgcoop_nfl::KgcoopNfl,
        Method::KgcoopSub => &kgcoop_sub::KgcoopSub,
        Method::Prograd => &prograd::Prograd,
        Method::ProgradSub => &prograd_sub::ProgradSub,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_method_as_specs_spell_it() {
        for m in Method::ALL {
            let spelled = serde_json::to_value(m).unwrap();
            assert_eq!(spelled, def(m).name(), "{m:?}");
            assert_eq!(m.to_string(), def(m).name());
            if let Some(src) = def(m).trajectory_source() {
                // A SubPT method is its source with the projection: the same terms and rule.
                let (d, s) = (def(m), def(src));
                assert!(d.uses_subspace() && !s.uses_subspace());
                assert_eq!(
                    (s.uses_nfl(), s.uses_kg(), s.uses_prograd()),
                    (d.uses_nfl(), d.uses_kg(), d.uses_prograd())
                );
            }
        }
    }

    /// A name outside the table never becomes a method, in a spec, a grid or a flag.
    #[test]
    fn an_unknown_method_cannot_reach_training() {
        let e = "maple".parse::<Method>().unwrap_err();
        assert!(
            e.contains("unknown method `maple`") && e.contains("prograd_sub"),
            "{e}"
        );
        let spec = crate::engine::presets::preset(
            crate::engine::presets::Protocol::FewShot,
            crate::data::DatasetName::Dtd,
            "d".into(),
            Method::Coop,
            1,
            1,
            "w".into(),
        );
        let mut v = serde_json::to_value(&spec).unwrap();
        v["method"] = "maple".into();
        let e = serde_json::from_value::<RunSpec>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("maple"), "{e}");
    }
}

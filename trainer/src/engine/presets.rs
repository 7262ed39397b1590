//! The paper's presets (spec §5), in one table: epochs per dataset and shots, SubPT's
//! (t_early, r) per protocol and shots, CoCoOp's settings, NFL's name lists, and what each
//! protocol changes. A `RunSpec` is built from (protocol, dataset, method, shots, seed,
//! weights) by [`preset`], then overrides; the grid and `subpt-bench train` both start here,
//! and the report reads a spec's protocol and [`subpt`] to tell paper settings from ablations.
use super::optim::SgdConfig;
pub use super::spec::Protocol;
use super::spec::{self, Augment, Method, NflSpec, RunSpec, SubptInit, SubptSpec};
use crate::clip::Precision;
use crate::data::{DatasetName, SubsampleClasses};
use crate::methods::nfl::NflNames;
use crate::methods::prompt_learner::PromptConfig;
use std::path::PathBuf;

/// Shots of the base-to-novel and domain-generalisation protocols.
pub const PROTOCOL_SHOTS: usize = 4;

/// Few-shot epochs: 50 on ImageNet; otherwise 50 at 1 shot, 100 at 2 and 4, 200 at 8 and 16.
pub fn few_shot_epochs(dataset: DatasetName, shots: usize) -> usize {
    if dataset == DatasetName::ImageNet {
        return 50;
    }
    match shots {
        1 => 50,
        2 | 4 => 100,
        _ => 200,
    }
}

/// Base-to-novel epochs of the CoOp family (CoCoOp keeps its own): 50 on ImageNet, else 100.
pub fn base_to_novel_epochs(dataset: DatasetName) -> usize {
    if dataset == DatasetName::ImageNet {
        50
    } else {
        100
    }
}

/// SubPT's setting: the early stage's length t_early and the subspace's rank r.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubptSetting {
    pub early_epochs: usize,
    pub rank: usize,
}

/// SubPT's setting per shot count for few-shot runs; t_early 30, r 10 for base-to-novel,
/// whatever the shots; domain generalisation trains its source model as a few-shot one.
pub fn subpt(protocol: Protocol, shots: usize) -> SubptSetting {
    let (early_epochs, rank) = match (protocol, shots) {
        (Protocol::BaseToNovel, _) => (30, 10),
        (_, 1) => (10, 5),
        (_, 2) => (20, 10),
        (_, 4) => (30, 10),
        (_, 8) => (40, 10),
        _ => (50, 10),
    };
    SubptSetting { early_epochs, rank }
}

/// SubPT's spec with the paper's setting for `protocol` and `shots`, the subspace anchored at
/// the initial context.
pub fn subpt_spec(protocol: Protocol, shots: usize) -> SubptSpec {
    let paper = subpt(protocol, shots);
    SubptSpec {
        rank: paper.rank,
        early_epochs: paper.early_epochs,
        init: SubptInit::Theta0,
        trajectory: None,
    }
}

/// The domain-generalisation targets of ImageNet (the default source): its shifted variants.
pub const DG_TARGETS: [DatasetName; 4] = [
    DatasetName::ImageNetV2,
    DatasetName::ImageNetSketch,
    DatasetName::ImageNetA,
    DatasetName::ImageNetR,
];

/// CoCoOp's own settings (its paper): 4 context tokens initialised from "a photo of a", batch
/// size 1, 10 epochs.
pub struct CoCoOpPreset {
    pub n_ctx: usize,
    pub ctx_init: &'static str,
    pub batch_size: usize,
    pub epochs: usize,
}

pub const COCOOP: CoCoOpPreset = CoCoOpPreset {
    n_ctx: 4,
    ctx_init: "a photo of a",
    batch_size: 1,
    epochs: 10,
};

/// CoCoOp's paper configuration as the model takes it.
pub fn cocoop_config() -> crate::methods::cocoop::CoCoOpConfig {
    crate::methods::cocoop::CoCoOpConfig {
        n_ctx: COCOOP.n_ctx,
        ctx_init: Some(COCOOP.ctx_init.into()),
    }
}

/// NFL's weight λ (spec §4.5: `LOSS.LAMBDA`, which no official script overrides).
pub const NFL_LAMBDA: f64 = 1.0;

/// The names NFL keeps close to zero-shot CLIP: the paper's ImageNet-100 list for few-shot runs
/// (the embedded datasets bring their own: words the embedded CLIP read), the dataset's new-half
/// names for base-to-novel.
pub fn nfl_names(protocol: Protocol, dataset: DatasetName) -> NflNames {
    if protocol == Protocol::BaseToNovel {
        NflNames::Novel
    } else if dataset.is_fashion_mnist() {
        NflNames::FashionMnistSynonyms
    } else if dataset.is_shapes() {
        NflNames::ShapesExtra
    } else {
        NflNames::ImageNet100
    }
}

/// The spec of one (protocol, dataset, method, shots, seed, weights) before overrides: the
/// paper's values where it sets them, the spec's defaults elsewhere.
pub fn preset(
    protocol: Protocol,
    dataset: DatasetName,
    root: PathBuf,
    method: Method,
    shots: usize,
    seed: u64,
    weights: PathBuf,
) -> RunSpec {
    let base_to_novel = protocol == Protocol::BaseToNovel;
    let mut prompt = PromptConfig::default();
    let (epochs, batch_size) = if method == Method::Cocoop {
        prompt.n_ctx = COCOOP.n_ctx;
        prompt.ctx_init = Some(COCOOP.ctx_init.into());
        (COCOOP.epochs, COCOOP.batch_size)
    } else if base_to_novel {
        (base_to_novel_epochs(dataset), spec::default_batch())
    } else {
        (few_shot_epochs(dataset, shots), spec::default_batch())
    };
    let (subsample, eval_subsets) = if base_to_novel {
        (
            SubsampleClasses::Base,
            vec![SubsampleClasses::Base, SubsampleClasses::New],
        )
    } else {
        (spec::default_subsample(), spec::default_eval())
    };
    RunSpec {
        dataset,
        root,
        method,
        shots,
        seed,
        subsample,
        eval_subsets,
        weights,
        precision: Precision::Fp32,
        prompt,
        epochs,
        batch_size,
        augment: Augment::default(),
        lr: spec::default_lr(),
        warmup_epochs: spec::default_warmup_epochs(),
        warmup_lr: spec::default_warmup_lr(),
        sgd: SgdConfig::default(),
        subpt: method.uses_subspace().then(|| subpt_spec(protocol, shots)),
        nfl: method.uses_nfl().then(|| NflSpec {
            names: nfl_names(protocol, dataset),
            lambda: NFL_LAMBDA,
        }),
        eval_every: 0,
        cache_dir: spec::default_cache(),
        evaluate_context: None,
        protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_change_what_the_paper_says() {
        let few = preset(
            Protocol::FewShot,
            DatasetName::Dtd,
            "d".into(),
            Method::CoopSubNfl,
            1,
            1,
            "w".into(),
        );
        assert_eq!((few.epochs, few.subsample), (50, SubsampleClasses::All));
        let sub = few.subpt.as_ref().unwrap();
        assert_eq!((sub.early_epochs, sub.rank), (10, 5));
        let b2n = preset(
            Protocol::BaseToNovel,
            DatasetName::Dtd,
            "d".into(),
            Method::CoopSubNfl,
            1,
            1,
            "w".into(),
        );
        assert_eq!(b2n.protocol, Protocol::BaseToNovel);
        assert_eq!((b2n.epochs, b2n.subsample), (100, SubsampleClasses::Base));
        assert_eq!(
            b2n.eval_subsets,
            [SubsampleClasses::Base, SubsampleClasses::New]
        );
        let sub = b2n.subpt.as_ref().unwrap();
        assert_eq!((sub.early_epochs, sub.rank), (30, 10));
        assert_eq!(b2n.nfl.as_ref().unwrap().names, NflNames::Novel);
        let co = preset(
            Protocol::BaseToNovel,
            DatasetName::Dtd,
            "d".into(),
            Method::Cocoop,
            4,
            1,
            "w".into(),
        );
        assert_eq!((co.epochs, co.batch_size), (10, 1));
        // The protocol does not make another run of the same settings.
        let mut dg = few.clone();
        dg.protocol = Protocol::DomainGeneralization;
        assert_eq!(dg.hash(), few.hash());
        assert_eq!(
            "base_to_novel".parse::<Protocol>(),
            Ok(Protocol::BaseToNovel)
        );
    }
}

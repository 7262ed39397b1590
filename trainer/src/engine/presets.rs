//! The papers' presets (spec §5), in one table: epochs per dataset and shots, SubPT's
//! (t_early, r) per protocol and shots, CoCoOp's settings, NFL's name lists, KgCoOp's and
//! ProGrad's settings and templates, and what each protocol changes. A `RunSpec` is built from (protocol, dataset, method, shots, seed,
//! weights) by [`preset`], then overrides; the grid and `subpt-bench train` both start here,
//! and the report reads a spec's protocol and [`subpt`] to tell paper settings from ablations.
use super::optim::SgdConfig;
pub use super::spec::Protocol;
use super::spec::{
    self, Augment, KgSpec, Method, NflSpec, ProGradSpec, RunSpec, SubptInit, SubptSpec,
};
use crate::clip::Precision;
use crate::data::{DatasetName, SubsampleClasses};
use crate::methods::nfl::NflNames;
use crate::methods::prompt_learner::PromptConfig;
use std::path::PathBuf;

/// Shots of SubPT's base-to-novel and domain-generalisation protocols.
pub const PROTOCOL_SHOTS: usize = 4;

/// Shots of CoCoOp's base-to-novel protocol (ViT-B/16 in its paper, and KgCoOp's).
pub const COCOOP_PROTOCOL_SHOTS: usize = 16;

/// The shots a protocol fixes (few-shot runs take the grid's).
pub fn protocol_shots(protocol: Protocol) -> Option<usize> {
    match protocol {
        Protocol::FewShot => None,
        Protocol::BaseToNovel | Protocol::DomainGeneralization => Some(PROTOCOL_SHOTS),
        Protocol::BaseToNovelCocoop => Some(COCOOP_PROTOCOL_SHOTS),
    }
}

/// The backbone a protocol's published numbers were measured with (what the report names in
/// its captions; the weights a grid runs are its own choice).
pub fn protocol_backbone(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::BaseToNovelCocoop => "ViT-B/16",
        _ => "RN50",
    }
}

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
/// whatever the shots (CoCoOp's protocol too: the paper has no setting of its own for it);
/// domain generalisation trains its source model as a few-shot one.
pub fn subpt(protocol: Protocol, shots: usize) -> SubptSetting {
    let (early_epochs, rank) = match (protocol, shots) {
        (Protocol::BaseToNovel | Protocol::BaseToNovelCocoop, _) => (30, 10),
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
    if protocol.is_base_to_novel() {
        NflNames::Novel
    } else if dataset.is_fashion_mnist() {
        NflNames::FashionMnistSynonyms
    } else if dataset.is_shapes() {
        NflNames::ShapesExtra
    } else {
        NflNames::ImageNet100
    }
}

/// The CoOp baseline of CoCoOp's protocol (the CoOp repository's `vit_b16_ctxv1`, which its
/// base-to-novel script names for CoOp): context from "a photo of a", 200 epochs (50 on
/// ImageNet), batch 32.
pub const COOP_IN_COCOOP_PROTOCOL: TrainPreset = TrainPreset {
    ctx_init: "a photo of a",
    epochs: 200,
    imagenet_epochs: 50,
    batch_size: 32,
};

/// Epochs, batch and context words of a method's own configuration.
pub struct TrainPreset {
    pub ctx_init: &'static str,
    pub epochs: usize,
    pub imagenet_epochs: usize,
    pub batch_size: usize,
}

/// KgCoOp's configuration (`vit_b16_ep100_ctxv1` / `rn50_ep100`, the only ones its scripts
/// use): "a photo of a" (hard-coded in its prompt learner whatever the config says), 100
/// epochs on every dataset, batch 128. Few-shot runs (it ships no few-shot script) take the
/// shared few-shot schedule and batch instead, so every method of a few-shot table sees the
/// same steps.
pub const KGCOOP: TrainPreset = TrainPreset {
    ctx_init: "a photo of a",
    epochs: 100,
    imagenet_epochs: 100,
    batch_size: 128,
};

/// W of KgCoOp's term: 8 in every script of the official code (its code's default 1 is never
/// used).
pub const KGCOOP_WEIGHT: f64 = 8.0;

/// KgCoOp's template per dataset (its `CUSTOM_TEMPLATES`; its own, not CoOp's: EuroSAT's
/// "a centered satellite photo of {}." is the same, Pets' and others' order differ from
/// ProGrad's). Datasets it does not list (the embedded ones) use their zero-shot template.
pub fn kgcoop_template(dataset: DatasetName) -> &'static str {
    use DatasetName::*;
    match dataset {
        OxfordPets => "a photo of a {}, a type of pet.",
        OxfordFlowers => "a photo of a {}, a type of flower.",
        FgvcAircraft => "a photo of a {}, a type of aircraft.",
        Dtd => "a photo of a {}, a type of texture.",
        EuroSat => "a centered satellite photo of {}.",
        Food101 => "a photo of {}, a type of food.",
        Ucf101 => "a photo of a person doing {}.",
        StanfordCars | Sun397 | Caltech101 | ImageNet | ImageNetV2 | ImageNetSketch | ImageNetA
        | ImageNetR => "a photo of a {}.",
        other => other.info().template,
    }
}

/// ProGrad's template per dataset (its `CUSTOM_TEMPLATES`, for the teacher and, without
/// " {}.", the context's initial words). Datasets it does not list use their zero-shot
/// template.
pub fn prograd_template(dataset: DatasetName) -> &'static str {
    use DatasetName::*;
    match dataset {
        OxfordPets => "a type of pet, a photo of a {}.",
        OxfordFlowers => "a type of flower, a photo of a {}.",
        FgvcAircraft => "a type of aircraft, a photo of a {}.",
        Dtd => "a texture of {}.",
        EuroSat => "a centered satellite photo of {}.",
        Food101 => "a type of food, a photo of {}.",
        Ucf101 => "a photo of a person doing {}.",
        StanfordCars | Sun397 | Caltech101 | ImageNet | ImageNetV2 | ImageNetSketch | ImageNetA
        | ImageNetR => "a photo of a {}.",
        other => other.info().template,
    }
}

/// ProGrad's context: 16 slots, its template's words before the class name in the last ones.
pub const PROGRAD_N_CTX: usize = 16;

/// ProGrad's λ: 1, but 0.8 for its 8- and 16-shot few-shot runs on Flowers102, DTD and
/// EuroSAT (its README); T = 1 in every configuration.
pub fn prograd(protocol: Protocol, dataset: DatasetName, shots: usize) -> ProGradSpec {
    use DatasetName::*;
    let softer = protocol == Protocol::FewShot
        && shots >= 8
        && matches!(dataset, OxfordFlowers | Dtd | EuroSat);
    ProGradSpec {
        lambda: if softer { 0.8 } else { 1.0 },
        temperature: 1.0,
        template: prograd_template(dataset).into(),
    }
}

/// ProGrad's configurations (`rn50_ep50` / `rn50_ep100` / `rn50`): batch 32 and the shared
/// few-shot schedule; base-to-novel 100 epochs (50 on ImageNet), in CoCoOp's protocol too (it
/// has no ViT configuration: its author kept CoOp's schedule, as CoCoOp's 10 epochs did not
/// converge).
fn prograd_epochs(protocol: Protocol, dataset: DatasetName, shots: usize) -> usize {
    match protocol {
        Protocol::FewShot | Protocol::DomainGeneralization => few_shot_epochs(dataset, shots),
        Protocol::BaseToNovel | Protocol::BaseToNovelCocoop => base_to_novel_epochs(dataset),
    }
}

/// The words before the class name in `template` ("a type of pet, a photo of a" of
/// "a type of pet, a photo of a {}."): ProGrad's initial context.
pub fn template_words(template: &str) -> &str {
    template.split(" {}").next().unwrap_or(template).trim_end()
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
    let base_to_novel = protocol.is_base_to_novel();
    let mut prompt = PromptConfig::default();
    let own = |p: &TrainPreset, prompt: &mut PromptConfig| {
        prompt.ctx_init = Some(p.ctx_init.into());
        let epochs = match dataset {
            DatasetName::ImageNet => p.imagenet_epochs,
            _ => p.epochs,
        };
        (epochs, p.batch_size)
    };
    let (epochs, batch_size) = if method == Method::Cocoop {
        prompt.n_ctx = COCOOP.n_ctx;
        prompt.ctx_init = Some(COCOOP.ctx_init.into());
        (COCOOP.epochs, COCOOP.batch_size)
    } else if method.uses_kg() {
        let (e, b) = own(&KGCOOP, &mut prompt);
        match base_to_novel {
            true => (e, b),
            false => (few_shot_epochs(dataset, shots), spec::default_batch()),
        }
    } else if method.uses_prograd() {
        prompt.n_ctx = PROGRAD_N_CTX;
        prompt.ctx_init = Some(template_words(prograd_template(dataset)).into());
        prompt.init_in_last_slots = true;
        (
            prograd_epochs(protocol, dataset, shots),
            spec::default_batch(),
        )
    } else if protocol == Protocol::BaseToNovelCocoop {
        own(&COOP_IN_COCOOP_PROTOCOL, &mut prompt)
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
        kg: method.uses_kg().then(|| KgSpec {
            weight: KGCOOP_WEIGHT,
            template: kgcoop_template(dataset).into(),
        }),
        prograd: method
            .uses_prograd()
            .then(|| prograd(protocol, dataset, shots)),
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

    fn of(protocol: Protocol, dataset: DatasetName, method: Method, shots: usize) -> RunSpec {
        preset(protocol, dataset, "d".into(), method, shots, 1, "w".into())
    }

    #[test]
    fn kgcoop_and_prograd_start_from_their_papers_settings() {
        use DatasetName::*;
        // KgCoOp in CoCoOp's protocol: its own configuration, W = 8, its template.
        let kg = of(Protocol::BaseToNovelCocoop, OxfordPets, Method::Kgcoop, 16);
        assert_eq!((kg.epochs, kg.batch_size), (100, 128));
        assert_eq!(kg.prompt.ctx_init.as_deref(), Some("a photo of a"));
        assert_eq!(kg.prompt.effective_n_ctx(), 4);
        let k = kg.kg.as_ref().unwrap();
        assert_eq!(
            (k.weight, k.template.as_str()),
            (8.0, "a photo of a {}, a type of pet.")
        );
        assert!(kg.prograd.is_none() && kg.nfl.is_none() && kg.subpt.is_none());
        // Its combinations carry the same term, plus NFL's or SubPT's part.
        let kn = of(Protocol::BaseToNovel, Dtd, Method::KgcoopNfl, 4);
        assert_eq!(kn.nfl.as_ref().unwrap().names, NflNames::Novel);
        assert_eq!(
            kn.kg.as_ref().unwrap().template,
            "a photo of a {}, a type of texture."
        );
        let ks = of(Protocol::BaseToNovel, Dtd, Method::KgcoopSub, 4);
        assert!(ks.kg.is_some() && ks.subpt.is_some());
        // Few-shot: the shared schedule (KgCoOp ships none).
        let kf = of(Protocol::FewShot, Dtd, Method::Kgcoop, 1);
        assert_eq!((kf.epochs, kf.batch_size), (50, 32));

        // ProGrad: 16 slots, its template's words last; λ 0.8 only where its README says.
        let pg = of(Protocol::BaseToNovel, OxfordPets, Method::Prograd, 4);
        assert_eq!((pg.epochs, pg.batch_size, pg.prompt.n_ctx), (100, 32, 16));
        assert_eq!(
            pg.prompt.ctx_init.as_deref(),
            Some("a type of pet, a photo of a")
        );
        assert!(pg.prompt.init_in_last_slots);
        assert_eq!(pg.prompt.effective_n_ctx(), 16);
        assert_eq!(
            pg.prompt.ctx_words(),
            "X X X X X X X X a type of pet, a photo of a"
        );
        let p = pg.prograd.as_ref().unwrap();
        assert_eq!((p.lambda, p.temperature), (1.0, 1.0));
        assert_eq!(p.template, "a type of pet, a photo of a {}.");
        let lambda = |d, k| {
            of(Protocol::FewShot, d, Method::Prograd, k)
                .prograd
                .unwrap()
                .lambda
        };
        assert_eq!(
            [
                lambda(Dtd, 16),
                lambda(EuroSat, 8),
                lambda(Dtd, 4),
                lambda(OxfordPets, 16)
            ],
            [0.8, 0.8, 1.0, 1.0]
        );
        assert_eq!(of(Protocol::FewShot, Dtd, Method::Prograd, 16).epochs, 200);
        let ps = of(Protocol::BaseToNovel, Dtd, Method::ProgradSub, 4);
        assert!(ps.prograd.is_some() && ps.subpt.is_some());
        assert_eq!(ps.prompt.ctx_init.as_deref(), Some("a texture of"));

        // CoOp in CoCoOp's protocol: that repository's CoOp configuration.
        let coop = of(Protocol::BaseToNovelCocoop, Dtd, Method::Coop, 16);
        assert_eq!((coop.epochs, coop.batch_size), (200, 32));
        assert_eq!(coop.prompt.effective_n_ctx(), 4);
        assert_eq!(
            of(Protocol::BaseToNovelCocoop, ImageNet, Method::Coop, 16).epochs,
            50
        );
        assert_eq!(protocol_shots(Protocol::BaseToNovelCocoop), Some(16));
        assert_eq!(protocol_shots(Protocol::FewShot), None);
        // Every preset of every method is a spec that can run.
        for m in Method::ALL {
            for p in Protocol::ALL {
                let s = of(p, OxfordPets, m, protocol_shots(p).unwrap_or(8));
                assert_eq!(s.problems(), [], "{m} {p}");
            }
        }
    }

    #[test]
    fn template_words_are_what_precedes_the_class_name() {
        assert_eq!(template_words("a photo of a {}."), "a photo of a");
        assert_eq!(
            template_words("a type of food, a photo of {}."),
            "a type of food, a photo of"
        );
        assert_eq!(
            template_words("a centered satellite photo of {}."),
            "a centered satellite photo of"
        );
    }
}

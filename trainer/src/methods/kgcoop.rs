//! KgCoOp (Yao et al., CVPR 2023): CoOp plus a knowledge term that keeps the learned prompts'
//! text features of the trained classes near zero-shot CLIP's features of the same classes
//! with one hand-written template.
use super::coop::train_prompts;
use super::learner::{PromptStep, PromptTerm};
use super::{MethodDef, TrainCx, Trained};
use crate::clip::{normalize, Clip};
use crate::engine::error::RunError;
use crate::engine::spec::KgSpec;
use crate::features::Frozen;
use tch::{Kind, Tensor};

/// `weight * (1 - mean_c cos(w_c, w_c^clip))` over every trained class, on every step (not
/// only the batch's classes), as the official code computes it. The paper writes a squared
/// L2 distance; on unit vectors the code's term is half of it, and the code's is what the
/// published numbers come from.
pub struct KgTerm {
    /// Zero-shot CLIP's features of the trained classes [n_cls, embed], unit rows.
    pub targets: Tensor,
    pub weight: f64,
}

impl KgTerm {
    /// The targets: the frozen CLIP's features of `kg.template` around each class name.
    pub fn build(frozen: Frozen, kg: &KgSpec, classnames: &[String]) -> Result<Self, RunError> {
        let templates = [kg.template.clone()];
        let targets = super::zeroshot::cached_text_features(frozen, classnames, &templates)?;
        Ok(KgTerm {
            targets,
            weight: kg.weight,
        })
    }

    /// The term on the learned prompts' (unnormalised) class features.
    pub fn on(&self, class_features: &Tensor) -> Tensor {
        let w = normalize(class_features);
        let z = self.targets.to_device(w.device()).to_kind(Kind::Float);
        let cos = (&w * &z).sum_dim_intlist(-1, false, Kind::Float);
        (cos.mean(Kind::Float).neg() + 1.0) * self.weight
    }
}

impl PromptTerm for KgTerm {
    fn name(&self) -> &'static str {
        "kg"
    }

    fn value(&self, _clip: &Clip, step: &PromptStep) -> Tensor {
        self.on(step.class_features)
    }
}

/// KgCoOp: a shared context initialised from "a photo of a" (its preset), cross-entropy plus
/// the knowledge term.
pub struct Kgcoop;

impl MethodDef for Kgcoop {
    fn name(&self) -> &'static str {
        "kgcoop"
    }

    fn paper_name(&self) -> &'static str {
        "KgCoOp"
    }

    fn uses_kg(&self) -> bool {
        true
    }

    fn prompt_terms(
        &self,
        cx: &TrainCx,
        classnames: &[String],
    ) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
        terms(cx, classnames)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

/// KgCoOp's term for the cell `cx` (every method made of KgCoOp builds it here).
pub fn terms(cx: &TrainCx, classnames: &[String]) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
    let kg = cx
        .spec
        .kg
        .as_ref()
        .ok_or_else(|| RunError::Spec(format!("{} needs its `kg` settings", cx.spec.method)))?;
    Ok(vec![Box::new(KgTerm::build(cx.frozen, kg, classnames)?)])
}

//! CoOp's classifier head: cosine logits between image features and the learned class prompts,
//! scaled by CLIP's (frozen) logit scale, trained with cross-entropy.
use super::learner::{BatchLoss, GradientRule, Learner, PromptStep, PromptTerm};
use super::nfl::Nfl;
use super::prompt_learner::PromptLearner;
use super::prompt_learner::PromptSet;
use super::subspace::Subspace;
use super::{nfl, MethodDef, TrainCx, Trained};
use crate::clip::tokenizer::Tokenizer;
use crate::clip::Clip;
use crate::data::{subsample_classes, SubsampleClasses};
use crate::engine::artefacts::{load_trajectory, save_context};
use crate::engine::error::RunError;
use crate::engine::eval::{Classifier, EvalSet};
use crate::engine::spec::SubptInit;
use crate::engine::train::{train, TrainSetup};
use tch::Tensor;

pub use crate::clip::{correct, logits};

/// Cross-entropy of the learned prompts on a batch of (frozen) image features.
pub fn loss(
    clip: &Clip,
    learner: &PromptLearner,
    image_features: &Tensor,
    labels: &Tensor,
) -> (Tensor, Tensor) {
    let logits = logits(clip, image_features, &learner.class_features(clip));
    let loss = logits.cross_entropy_for_logits(labels);
    (loss, logits)
}

impl Learner for PromptLearner {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> BatchLoss {
        let (ce, logits) = loss(clip, self, img, labels);
        BatchLoss::ce(ce, logits)
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.ctx]
    }

    fn ctx(&self) -> &Tensor {
        &self.ctx
    }

    fn classifier<'a>(&'a self, clip: &'a Clip, set: &EvalSet) -> Result<Classifier<'a>, RunError> {
        if self.config.class_specific && set.classnames.len() != self.classes.len() {
            return Err(RunError::Spec(format!(
                "class-specific contexts cannot be evaluated on other classes (`{}` subset)",
                set.name
            )));
        }
        let prompts = PromptSet::new(
            clip,
            &Tokenizer::new(),
            &set.classnames,
            &self.ctx_words,
            self.config.effective_n_ctx(),
        )?;
        let text = tch::no_grad(|| self.features_for(clip, &prompts));
        Ok(Classifier::Text(text))
    }
}

/// The CoOp family's learner: the prompts, their methods' batch terms and, in NFL cells,
/// NFL's term on them.
pub struct CoopLearner {
    pub prompts: PromptLearner,
    pub terms: Vec<Box<dyn PromptTerm>>,
    pub nfl: Option<Nfl>,
}

impl Learner for CoopLearner {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> BatchLoss {
        let class_features = self.prompts.class_features(clip);
        let logits = logits(clip, img, &class_features);
        let ce = logits.cross_entropy_for_logits(labels);
        let step = PromptStep {
            img,
            class_features: &class_features,
            logits: &logits,
        };
        let mut terms = vec![("ce", ce)];
        terms.extend(self.terms.iter().map(|t| (t.name(), t.value(clip, &step))));
        BatchLoss { terms, logits }
    }

    fn extra_terms(&self, clip: &Clip) -> Vec<(&'static str, Tensor)> {
        self.nfl
            .iter()
            .map(|n| ("nfl", n.loss(clip, &self.prompts)))
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.prompts.params_mut()
    }

    fn ctx(&self) -> &Tensor {
        &self.prompts.ctx
    }

    fn classifier<'a>(&'a self, clip: &'a Clip, set: &EvalSet) -> Result<Classifier<'a>, RunError> {
        self.prompts.classifier(clip, set)
    }
}

/// CoOp (Zhou et al., 2022): one context shared by every class, learned with cross-entropy.
pub struct Coop;

impl MethodDef for Coop {
    fn name(&self) -> &'static str {
        "coop"
    }

    fn paper_name(&self) -> &'static str {
        "CoOp"
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

/// Trains the CoOp family: a shared context with `m`'s batch terms and gradient rule (KgCoOp,
/// ProGrad), NFL's loss when `m` uses it, and every gradient projected onto the subspace of an
/// early trajectory when `m` uses one (SubPT: the trajectory of the source cell, or an early
/// stage trained here from the same seed and θ0, with the source's terms and rule).
pub fn train_prompts(cx: &TrainCx, m: &dyn MethodDef) -> Result<Trained, RunError> {
    let spec = cx.spec;
    tch::manual_seed(spec.seed as i64);
    let classnames = &cx.train_split.classnames;
    let learner = PromptLearner::new(cx.frozen.clip, cx.tok, classnames, spec.prompt.clone())?;
    let theta0 = learner.ctx.detach().copy();
    let nfl = match &spec.nfl {
        Some(n) if m.uses_nfl() => {
            let novel = subsample_classes(cx.drawn, SubsampleClasses::New).classnames;
            Some(nfl::build(cx, &learner, (&n.names, n.lambda), &novel)?)
        }
        _ => None,
    };
    let terms = m.prompt_terms(cx, classnames)?;
    let own_rule = m.gradient_rule(spec)?;
    let mut rules: Vec<&dyn GradientRule> = own_rule.as_deref().into_iter().collect();
    let mut learner = CoopLearner {
        prompts: learner,
        terms,
        nfl,
    };
    let setup = TrainSetup {
        spec,
        frozen: cx.frozen,
        items: &cx.train_split.train,
        eval_sets: cx.eval_sets,
        comm: cx.comm,
    };
    let mut out = Trained::default();
    let projector = match spec.subpt.as_ref().filter(|_| m.uses_subspace()) {
        Some(sub) => {
            let trajectory = match &sub.trajectory {
                Some(p) => load_trajectory(p, sub.early_epochs)?,
                None => {
                    // The early stage of the source method, with the same seed and θ0.
                    let early = train(&setup, &mut learner, sub.early_epochs, &rules, &mut vec![])?;
                    learner.prompts.set_context(&theta0)?;
                    early
                }
            };
            let s = Subspace::fit(&trajectory, sub.rank)?;
            out.subspace = Some(s.summary(trajectory.len()));
            if sub.init == SubptInit::Epoch1 {
                learner.prompts.set_context(&trajectory[0])?;
            }
            Some(s.projector(cx.frozen.clip.device))
        }
        None => None,
    };
    // ProGrad's rule reads whole gradients; the projection keeps its result in the subspace.
    rules.extend(projector.as_ref().map(|p| p as &dyn GradientRule));
    let trajectory = train(&setup, &mut learner, spec.epochs, &rules, &mut out.curves)?;
    if cx.comm.rank() == 0 {
        out.outputs = save_context(cx.store, &theta0, &trajectory, &[])?;
    }
    out.learner = Some(Box::new(learner));
    Ok(out)
}

//! ProGrad (Zhu et al., ICCV 2023): prompt-aligned gradients. Cross-entropy's gradient is kept
//! only where it does not conflict with the gradient of a KL term towards zero-shot CLIP's
//! predictions; the KL gradient itself is never added.
use super::coop::train_prompts;
use super::learner::{GradientRule, PromptStep, PromptTerm, TermGrads};
use super::{MethodDef, TrainCx, Trained};
use crate::clip::{logits, Clip};
use crate::engine::error::RunError;
use crate::engine::spec::{ProGradSpec, RunSpec};
use crate::features::Frozen;
use tch::{Kind, Tensor};

/// The distillation term: soft-target cross-entropy of the prompted logits against zero-shot
/// CLIP's at temperature T, times T² (the official `ProGradLoss`; its gradient is the KL
/// divergence's). The teacher is the frozen CLIP with ProGrad's template for the dataset, read
/// on the same image features as the student (the official code runs a second, fp32 copy of
/// CLIP on the same images: for an fp32 model the same numbers).
pub struct KlTerm {
    /// Zero-shot CLIP's features of the trained classes [n_cls, embed], unit rows.
    pub teacher: Tensor,
    pub temperature: f64,
}

impl KlTerm {
    pub fn build(frozen: Frozen, p: &ProGradSpec, classnames: &[String]) -> Result<Self, RunError> {
        let templates = [p.template.clone()];
        let teacher = super::zeroshot::cached_text_features(frozen, classnames, &templates)?;
        Ok(KlTerm {
            teacher,
            temperature: p.temperature,
        })
    }

    /// The term given the batch's image features and the student's logits.
    pub fn on(&self, clip: &Clip, img: &Tensor, student: &Tensor) -> Tensor {
        let t = self.temperature;
        let teacher = tch::no_grad(|| logits(clip, img, &self.teacher.to_device(img.device())));
        let p = (teacher / t).softmax(-1, Kind::Float);
        let log_q = (student / t).log_softmax(-1, Kind::Float);
        (p * log_q)
            .sum_dim_intlist(-1, false, Kind::Float)
            .neg()
            .mean(Kind::Float)
            * (t * t)
    }
}

impl PromptTerm for KlTerm {
    fn name(&self) -> &'static str {
        "kl"
    }

    fn value(&self, clip: &Clip, step: &PromptStep) -> Tensor {
        self.on(clip, step.img, step.logits)
    }
}

/// ProGrad's rule, per trained tensor: with `g` cross-entropy's gradient and `k` the KL
/// term's, `g - λ <g, k̂> k̂` (k̂ = k/|k|) where cos(g, k) < 0, else `g`. The official code
/// normalises without an epsilon; a zero gradient makes the cosine NaN there, which is not
/// below 0, so `g` stays: the same here.
pub struct ProGradRule {
    pub lambda: f64,
}

impl ProGradRule {
    pub fn of(p: &ProGradSpec) -> Self {
        ProGradRule { lambda: p.lambda }
    }

    /// The update's gradient of one tensor from cross-entropy's (`g`) and the KL term's (`k`).
    pub fn combine(&self, g: &Tensor, k: &Tensor) -> Tensor {
        let k_hat = k / k.norm();
        let g_hat = g / g.norm();
        let cos = g_hat
            .flatten(0, -1)
            .dot(&k_hat.flatten(0, -1))
            .double_value(&[]);
        if cos < 0.0 {
            let along = g.flatten(0, -1).dot(&k_hat.flatten(0, -1));
            g - k_hat * along * self.lambda
        } else {
            g.shallow_clone()
        }
    }
}

impl GradientRule for ProGradRule {
    fn reads_apart(&self) -> &'static [&'static str] {
        &["ce", "kl"]
    }

    fn apply(&self, grads: &mut TermGrads) {
        let at = |name: &str, grads: &TermGrads| grads.iter().position(|(n, _)| *n == name);
        let (Some(i), Some(j)) = (at("ce", grads), at("kl", grads)) else {
            return;
        };
        let combined: Vec<Tensor> = grads[i]
            .1
            .iter()
            .zip(&grads[j].1)
            .map(|(g, k)| self.combine(g, k))
            .collect();
        grads.retain(|(n, _)| *n != "ce" && *n != "kl");
        grads.insert(0, ("prograd", combined));
    }
}

/// ProGrad: a shared context initialised from its template's words in the last of 16 slots
/// (its preset), trained with cross-entropy under the rule.
pub struct Prograd;

impl MethodDef for Prograd {
    fn name(&self) -> &'static str {
        "prograd"
    }

    fn paper_name(&self) -> &'static str {
        "ProGrad"
    }

    fn uses_prograd(&self) -> bool {
        true
    }

    fn prompt_terms(
        &self,
        cx: &TrainCx,
        classnames: &[String],
    ) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
        terms(cx, classnames)
    }

    fn gradient_rule(&self, spec: &RunSpec) -> Result<Option<Box<dyn GradientRule>>, RunError> {
        rule(spec)
    }

    fn train(&self, cx: &TrainCx) -> Result<Trained, RunError> {
        train_prompts(cx, self)
    }
}

fn settings(spec: &RunSpec) -> Result<&ProGradSpec, RunError> {
    spec.prograd
        .as_ref()
        .ok_or_else(|| RunError::Spec(format!("{} needs its `prograd` settings", spec.method)))
}

/// ProGrad's KL term for the cell `cx` (every method made of ProGrad builds it here).
pub fn terms(cx: &TrainCx, classnames: &[String]) -> Result<Vec<Box<dyn PromptTerm>>, RunError> {
    let p = settings(cx.spec)?;
    Ok(vec![Box::new(KlTerm::build(cx.frozen, p, classnames)?)])
}

/// ProGrad's rule for `spec`.
pub fn rule(spec: &RunSpec) -> Result<Option<Box<dyn GradientRule>>, RunError> {
    Ok(Some(Box::new(ProGradRule::of(settings(spec)?))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_removes_only_a_conflicting_component() {
        let rule = ProGradRule { lambda: 1.0 };
        let g = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        // Agreeing (cos > 0): cross-entropy's gradient as it is.
        let k = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        assert_eq!(
            Vec::<f32>::try_from(rule.combine(&g, &k).view([-1])).unwrap(),
            [1.0, 1.0]
        );
        // Conflicting: the component along -k is removed (λ = 1), leaving g orthogonal to k.
        let k = Tensor::from_slice(&[-2.0f32, 0.5]).view([1, 2]);
        let out = rule.combine(&g, &k);
        let dot = (&out * &k).sum(Kind::Float).double_value(&[]);
        assert!(dot.abs() < 1e-6, "{dot}");
        // λ = 0.5 removes half of it.
        let half = ProGradRule { lambda: 0.5 }.combine(&g, &k);
        let want = (&g + &out) / 2.0;
        assert!((half - want).abs().max().double_value(&[]) < 1e-6);
        // A zero KL gradient leaves g (the official NaN cosine is not below 0).
        let z = Tensor::zeros([1, 2], (Kind::Float, tch::Device::Cpu));
        assert_eq!(
            Vec::<f32>::try_from(rule.combine(&g, &z).view([-1])).unwrap(),
            [1.0, 1.0]
        );
        // As a rule: ce and kl become one entry; the rest stays.
        let mut grads: TermGrads = vec![
            ("ce", vec![g.shallow_clone()]),
            ("kl", vec![k.shallow_clone()]),
            ("loss", vec![g.zeros_like()]),
        ];
        rule.apply(&mut grads);
        let names: Vec<&str> = grads.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["prograd", "loss"]);
    }
}

//! Zero-shot CLIP classifiers: one hand-written template per dataset, or the 80-template
//! ImageNet ensemble (plus the dataset's own template) whose averaged features are NFL's targets.
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{normalize, Clip, ClipError};
use crate::methods::prompt_learner::prompt_name;
use tch::{Kind, Tensor};

/// The 80 prompt templates of CLIP's ImageNet ensemble.
pub fn imagenet_templates() -> Vec<&'static str> {
    include_str!("../../../assets/imagenet_templates_80.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// The ensemble of a dataset: the 80 templates, plus its own template unless it is ImageNet's
/// (ImageNet's template is already among the 80).
pub fn ensemble_templates(dataset_template: Option<&str>) -> Vec<String> {
    let mut t: Vec<String> = imagenet_templates().iter().map(|s| s.to_string()).collect();
    if let Some(own) = dataset_template {
        t.push(own.to_string());
    }
    t
}

/// L2-normalised features [n_cls, embed] of `template` filled with each class name.
pub fn template_features(
    clip: &Clip,
    tok: &Tokenizer,
    classnames: &[String],
    template: &str,
) -> Result<Tensor, ClipError> {
    let texts: Vec<String> = classnames
        .iter()
        .map(|c| template.replace("{}", &prompt_name(c)))
        .collect();
    let mut out = Vec::new();
    // Chunks keep peak memory flat for 1000-class lists on large text towers.
    for chunk in texts.chunks(256) {
        let ids = clip.tokenize(tok, chunk, false)?;
        out.push(tch::no_grad(|| normalize(&clip.encode_text(&ids))));
    }
    Ok(Tensor::cat(&out, 0))
}

/// Mean of the per-template normalised features, normalised again (CLIP's ensemble).
pub fn ensemble_features(
    clip: &Clip,
    tok: &Tokenizer,
    classnames: &[String],
    templates: &[String],
) -> Result<Tensor, crate::features::FeatureError> {
    let mut sum: Option<Tensor> = None;
    for t in templates {
        let f = template_features(clip, tok, classnames, t)?;
        sum = Some(match sum {
            None => f,
            Some(s) => s + f,
        });
    }
    let mean = sum.expect("at least one template") / templates.len() as f64;
    Ok(normalize(&mean).to_kind(Kind::Float))
}

/// Cached text features: the key names the weights digest, precision, class list and templates.
pub fn cached_text_features(
    crate::features::Frozen {
        clip,
        cache,
        digest: weights_digest,
    }: crate::features::Frozen,
    classnames: &[String],
    templates: &[String],
) -> Result<Tensor, crate::features::FeatureError> {
    let key = serde_json::json!({
        "weights": weights_digest,
        "precision": clip.precision.to_string(),
        "classnames": classnames,
        "templates": templates,
    });
    let tok = Tokenizer::new();
    let (t, _) = cache.get_or_compute(
        "text",
        &key,
        || -> Result<_, crate::features::FeatureError> {
            let f = ensemble_features(clip, &tok, classnames, templates)?;
            Ok(vec![(
                "features".to_string(),
                f.to_device(tch::Device::Cpu),
            )])
        },
    )?;
    Ok(t.into_iter()
        .next()
        .expect("one tensor")
        .1
        .to_device(clip.device))
}

/// Zero-shot CLIP: the dataset's template around each class name, nothing trained.
pub struct ZeroShot;

impl super::MethodDef for ZeroShot {
    fn name(&self) -> &'static str {
        "zsclip"
    }

    fn paper_name(&self) -> &'static str {
        "Zero-shot CLIP"
    }

    fn learns(&self) -> bool {
        false
    }

    fn train(
        &self,
        _cx: &super::TrainCx,
    ) -> Result<super::Trained, crate::engine::error::RunError> {
        Ok(super::Trained::default())
    }
}

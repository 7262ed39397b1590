//! CoCoOp (conditional prompt learning): CoOp's shared context shifted, image by image, by a
//! small meta-network of that image's normalised feature, so every image reads its own class
//! prompts. Trainable: the context and the meta-network; CLIP stays frozen.
use super::learner::{BatchLoss, Learner};
use super::prompt_learner::{ClassTokenPosition, PromptConfig, PromptLearner};
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{normalize, Clip, ClipError};
use crate::engine::error::RunError;
use crate::engine::eval::{Classifier, EvalSet};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Prompts sent through the text tower in one pass when several images share it: every image
/// costs `n_cls` prompts, so small class lists batch many images and ImageNet goes one by one.
pub const PROMPTS_PER_PASS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoCoOpConfig {
    /// Number of context vectors for a random initialisation.
    pub n_ctx: usize,
    /// Initial context words; `None` (or an empty string, as the reference's `if ctx_init:`
    /// treats it) draws the context from N(0, 0.02^2).
    pub ctx_init: Option<String>,
}

impl CoCoOpConfig {
    /// The prompt layout CoCoOp always uses: one shared context, class name at the end.
    pub fn prompt_config(&self) -> PromptConfig {
        PromptConfig {
            n_ctx: self.n_ctx,
            ctx_init: self
                .ctx_init
                .as_deref()
                .filter(|w| !w.is_empty())
                .map(|w| w.replace('_', " ")),
            class_specific: false,
            position: ClassTokenPosition::End,
            init_in_last_slots: false,
        }
    }
}

/// A fully connected layer `x @ weight^T + bias` with fp32 trainable tensors.
pub struct Linear {
    /// [out, in]
    pub weight: Tensor,
    /// [out]
    pub bias: Tensor,
}

impl Linear {
    /// `nn.Linear`'s default initialisation: Kaiming-uniform weights (a = sqrt 5) and
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases, weight first. Drawn on the CPU generator, where
    /// the reference creates its modules, so a seed gives the same values on every device.
    fn init(fan_in: i64, fan_out: i64, device: Device) -> Self {
        let a = 5f64.sqrt();
        let gain = (2.0 / (1.0 + a * a)).sqrt();
        let w_bound = 3f64.sqrt() * (gain / (fan_in as f64).sqrt());
        let b_bound = 1.0 / (fan_in as f64).sqrt();
        let opts = (Kind::Float, Device::Cpu);
        let weight = Tensor::empty([fan_out, fan_in], opts).uniform_(-w_bound, w_bound);
        let bias = Tensor::empty([fan_out], opts).uniform_(-b_bound, b_bound);
        Linear {
            weight: weight.to_device(device).set_requires_grad(true),
            bias: bias.to_device(device).set_requires_grad(true),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// Linear(vis_dim -> vis_dim/16) -> ReLU -> Linear(-> ctx_dim): one context shift per image.
pub struct MetaNet {
    pub linear1: Linear,
    pub linear2: Linear,
}

/// Names of the meta-network tensors, as the reference prompt learner's state dict has them.
pub const META_NET_KEYS: [&str; 4] = [
    "meta_net.linear1.weight",
    "meta_net.linear1.bias",
    "meta_net.linear2.weight",
    "meta_net.linear2.bias",
];

impl MetaNet {
    /// Freshly initialised from the torch RNG (seeded by the caller via `tch::manual_seed`).
    pub fn new(vis_dim: i64, ctx_dim: i64, device: Device) -> Result<Self, ClipError> {
        let hidden = vis_dim / 16;
        if hidden == 0 {
            return Err(ClipError::Config(format!(
                "CoCoOp's meta-net needs an image embedding of at least 16 dims, got {vis_dim}"
            )));
        }
        let linear1 = Linear::init(vis_dim, hidden, device);
        let linear2 = Linear::init(hidden, ctx_dim, device);
        Ok(MetaNet { linear1, linear2 })
    }

    /// Context shift [B, ctx_dim] of image features [B, vis_dim].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.linear2.forward(&self.linear1.forward(x).relu())
    }

    fn tensors(&self) -> [&Tensor; 4] {
        [
            &self.linear1.weight,
            &self.linear1.bias,
            &self.linear2.weight,
            &self.linear2.bias,
        ]
    }

    fn tensors_mut(&mut self) -> [&mut Tensor; 4] {
        [
            &mut self.linear1.weight,
            &mut self.linear1.bias,
            &mut self.linear2.weight,
            &mut self.linear2.bias,
        ]
    }
}

/// CoCoOp's prompt learner: CoOp's context (shared, end position) plus the meta-network.
pub struct CoCoOp {
    pub learner: PromptLearner,
    pub meta_net: MetaNet,
    /// Text-tower batch budget in prompts (see [`PROMPTS_PER_PASS`]); it changes the speed and
    /// memory of a pass, not its result.
    pub prompts_per_pass: usize,
}

impl CoCoOp {
    /// Builds the class prompts, then draws the context (random init) and the meta-network from
    /// the torch RNG in the reference's order; seed it with `tch::manual_seed` first.
    pub fn new(
        clip: &Clip,
        tok: &Tokenizer,
        classnames: &[String],
        config: &CoCoOpConfig,
    ) -> Result<Self, ClipError> {
        let learner = PromptLearner::new(clip, tok, classnames, config.prompt_config())?;
        let meta_net = MetaNet::new(clip.config.embed_dim, clip.text.width(), clip.device)?;
        Ok(CoCoOp {
            learner,
            meta_net,
            prompts_per_pass: PROMPTS_PER_PASS,
        })
    }

    /// The same trained context and meta-network read with another class list (e.g. the novel
    /// classes at test time). Shares the parameters; draws nothing from the RNG.
    pub fn for_classes(
        &self,
        clip: &Clip,
        tok: &Tokenizer,
        classnames: &[String],
    ) -> Result<CoCoOp, ClipError> {
        let l = &self.learner;
        let classes = crate::methods::prompt_learner::PromptSet::new(
            clip,
            tok,
            classnames,
            &l.ctx_words,
            l.config.effective_n_ctx(),
        )?;
        Ok(CoCoOp {
            learner: PromptLearner {
                config: l.config.clone(),
                ctx: l.ctx.shallow_clone(),
                classes,
                ctx_words: l.ctx_words.clone(),
            },
            meta_net: MetaNet {
                linear1: Linear {
                    weight: self.meta_net.linear1.weight.shallow_clone(),
                    bias: self.meta_net.linear1.bias.shallow_clone(),
                },
                linear2: Linear {
                    weight: self.meta_net.linear2.weight.shallow_clone(),
                    bias: self.meta_net.linear2.bias.shallow_clone(),
                },
            },
            prompts_per_pass: self.prompts_per_pass,
        })
    }

    pub fn n_classes(&self) -> usize {
        self.learner.classes.len()
    }

    /// The trainable tensors, context first then [`META_NET_KEYS`] order. They share storage
    /// with the model, so an in-place update (the engine's `Sgd::step`) trains it; fetch them
    /// again after [`CoCoOp::load_parameters`], which replaces the tensors.
    pub fn parameters(&self) -> Vec<Tensor> {
        std::iter::once(&self.learner.ctx)
            .chain(self.meta_net.tensors())
            .map(Tensor::shallow_clone)
            .collect()
    }

    /// The trainable tensors in [`CoCoOp::parameters`] order, for the optimiser.
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        std::iter::once(&mut self.learner.ctx)
            .chain(self.meta_net.tensors_mut())
            .collect()
    }

    /// `("ctx", ..)` then the meta-network tensors under the reference's state-dict names.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        std::iter::once("ctx")
            .chain(META_NET_KEYS)
            .map(String::from)
            .zip(self.parameters())
            .collect()
    }

    /// Replaces the trainable tensors by name (a checkpoint, a restart point). Every name of
    /// [`CoCoOp::named_parameters`] must be given with its shape; other names are ignored, as
    /// the reference ignores its frozen token buffers when loading.
    pub fn load_parameters(&mut self, named: &[(String, Tensor)]) -> Result<(), ClipError> {
        let find = |key: &str| {
            named
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, t)| t)
                .ok_or_else(|| ClipError::MissingKey(key.to_string()))
        };
        let ctx = find("ctx")?;
        let meta: Vec<&Tensor> = META_NET_KEYS
            .iter()
            .map(|k| find(k))
            .collect::<Result<_, _>>()?;
        for ((key, new), old) in META_NET_KEYS.iter().zip(&meta).zip(self.meta_net.tensors()) {
            if new.size() != old.size() {
                return Err(ClipError::Shape {
                    key: key.to_string(),
                    expected: old.size(),
                    found: new.size(),
                });
            }
        }
        self.learner.set_context(ctx)?;
        for (slot, new) in self.meta_net.tensors_mut().into_iter().zip(meta) {
            let device = slot.device();
            *slot = new
                .to_kind(Kind::Float)
                .to_device(device)
                .detach()
                .set_requires_grad(true);
        }
        Ok(())
    }

    /// Logits [B, n_cls] = `exp(logit_scale) * norm(img_i) @ norm(txt_i)^T`, where `txt_i` are
    /// the class features read with image i's shifted context. The meta-network sees the
    /// *normalised* image feature, as the reference feeds it.
    pub fn logits(&self, clip: &Clip, image_features: &Tensor) -> Tensor {
        let device = self.learner.ctx.device();
        let img = normalize(&image_features.to_device(device).to_kind(Kind::Float));
        let shift = self.meta_net.forward(&img);
        let ctx = self.learner.ctx.unsqueeze(0) + shift.unsqueeze(1);
        let classes = &self.learner.classes;
        let n_cls = classes.len() as i64;
        let b = img.size()[0];
        if b == 0 {
            return Tensor::zeros([0, n_cls], (Kind::Float, device));
        }
        let per_pass = (self.prompts_per_pass as i64 / n_cls.max(1)).max(1);
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < b {
            let k = per_pass.min(b - start);
            let prompts: Vec<Tensor> = (start..start + k)
                .map(|i| classes.assemble(&ctx.get(i), ClassTokenPosition::End))
                .collect();
            let ids = classes.ids.repeat([k, 1]);
            let txt = clip
                .text
                .encode_embeddings(&Tensor::cat(&prompts, 0), &ids)
                .to_kind(Kind::Float);
            let txt = normalize(&txt).view([k, n_cls, -1]);
            let imf = img.narrow(0, start, k).unsqueeze(-1);
            chunks.push(txt.matmul(&imf).squeeze_dim(-1) * clip.logit_scale);
            start += k;
        }
        Tensor::cat(&chunks, 0)
    }

    /// Cross-entropy and logits of a training batch of (frozen, unnormalised) image features.
    pub fn loss(&self, clip: &Clip, image_features: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
        let logits = self.logits(clip, image_features);
        let loss = logits.cross_entropy_for_logits(&labels.to_device(logits.device()));
        (loss, logits)
    }

    /// Logits of a test batch, without building a graph.
    pub fn eval_logits(&self, clip: &Clip, image_features: &Tensor) -> Tensor {
        tch::no_grad(|| self.logits(clip, image_features))
    }
}

impl Learner for CoCoOp {
    fn loss(&self, clip: &Clip, img: &Tensor, labels: &Tensor) -> BatchLoss {
        let (ce, logits) = CoCoOp::loss(self, clip, img, labels);
        BatchLoss::ce(ce, logits)
    }

    fn params_mut(&mut self) -> Vec<&mut Tensor> {
        self.parameters_mut()
    }

    fn ctx(&self) -> &Tensor {
        &self.learner.ctx
    }

    fn classifier<'a>(&'a self, clip: &'a Clip, set: &EvalSet) -> Result<Classifier<'a>, RunError> {
        let other = self.for_classes(clip, &Tokenizer::new(), &set.classnames)?;
        Ok(Classifier::PerImage(Box::new(move |img| {
            other.eval_logits(clip, img)
        })))
    }
}

/// CoCoOp as a method of the table: its own preset (context words, batch 1, 10 epochs).
pub struct CoCoOpMethod;

impl super::MethodDef for CoCoOpMethod {
    fn name(&self) -> &'static str {
        "cocoop"
    }

    fn paper_name(&self) -> &'static str {
        "CoCoOp"
    }

    fn train(&self, cx: &super::TrainCx) -> Result<super::Trained, crate::engine::error::RunError> {
        use crate::engine::artefacts::save_context;
        use crate::engine::train::{train, TrainSetup};
        let spec = cx.spec;
        tch::manual_seed(spec.seed as i64);
        let cfg = CoCoOpConfig {
            n_ctx: spec.prompt.n_ctx,
            ctx_init: spec.prompt.ctx_init.clone(),
        };
        let mut model = CoCoOp::new(cx.frozen.clip, cx.tok, &cx.train_split.classnames, &cfg)?;
        let theta0 = model.learner.ctx.detach().copy();
        let setup = TrainSetup {
            spec,
            frozen: cx.frozen,
            items: &cx.train_split.train,
            eval_sets: cx.eval_sets,
            comm: cx.comm,
        };
        let mut out = super::Trained::default();
        let trajectory = train(&setup, &mut model, spec.epochs, &[], &mut out.curves)?;
        if cx.comm.rank() == 0 {
            // The meta-network travels with the context, so the model can be evaluated on
            // other datasets (domain generalisation).
            let meta = model.named_parameters().split_off(1);
            out.outputs = save_context(cx.store, &theta0, &trajectory, &meta)?;
        }
        out.learner = Some(Box::new(model));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::config::Activation;
    use crate::clip::random_init::{generate, Spec};
    use crate::clip::Precision;

    fn model(config: &CoCoOpConfig) -> (Clip, CoCoOp) {
        let clip = Clip::from_tensors(
            generate(&Spec::tiny_vit(), 5),
            Activation::QuickGelu,
            Precision::Fp32,
            Device::Cpu,
        )
        .unwrap();
        let names: Vec<String> = ["cat", "dog", "sea_lion"].map(String::from).to_vec();
        tch::manual_seed(1);
        let m = CoCoOp::new(&clip, &Tokenizer::new(), &names, config).unwrap();
        (clip, m)
    }

    #[test]
    fn word_init_fixes_the_context_length_and_empty_words_mean_random() {
        let (_, m) = model(&crate::engine::presets::cocoop_config());
        assert_eq!(m.learner.ctx.size(), [4, 64]);
        assert_eq!(m.learner.ctx_words, "a photo of a");
        let cfg = CoCoOpConfig {
            n_ctx: 3,
            ctx_init: Some(String::new()),
        };
        let (_, m) = model(&cfg);
        assert_eq!(m.learner.ctx.size(), [3, 64]);
        assert_eq!(m.learner.ctx_words, "X X X");
        assert_eq!(m.meta_net.linear1.weight.size(), [4, 64]);
        assert_eq!(m.meta_net.linear2.bias.size(), [64]);
    }

    #[test]
    fn logits_do_not_depend_on_the_text_batch_budget() {
        let (clip, mut m) = model(&crate::engine::presets::cocoop_config());
        let feats = Tensor::randn([5, 64], (Kind::Float, Device::Cpu));
        let all = m.eval_logits(&clip, &feats);
        m.prompts_per_pass = 7; // two images per pass, then one
        let split = m.eval_logits(&clip, &feats);
        assert_eq!(all.size(), [5, 3]);
        let err = (&all - &split).abs().max().double_value(&[]);
        assert!(err < 1e-5, "chunked logits differ by {err}");
        // Each image reads its own prompts: another image's feature changes only its own row.
        let other = feats.copy();
        other
            .get(2)
            .copy_(&Tensor::randn([64], (Kind::Float, Device::Cpu)));
        let moved = m.eval_logits(&clip, &other);
        let rows = (&moved - &all).abs().amax([1], false);
        assert!(rows.double_value(&[2]) > 1e-4);
        for i in [0, 1, 3, 4] {
            assert!(rows.double_value(&[i]) < 1e-5, "row {i} moved");
        }
    }

    #[test]
    fn parameters_share_storage_and_load_checks_names_and_shapes() {
        let (_, mut m) = model(&crate::engine::presets::cocoop_config());
        let mut named = m.named_parameters();
        assert_eq!(named[0].0, "ctx");
        assert_eq!(named[4].0, "meta_net.linear2.bias");
        tch::no_grad(|| {
            let _ = m.parameters()[2].fill_(0.25);
        });
        assert_eq!(m.meta_net.linear1.bias.double_value(&[0]), 0.25);

        let mut bad = named
            .iter()
            .map(|(k, v)| (k.clone(), v.copy()))
            .collect::<Vec<_>>();
        bad[3].1 = Tensor::zeros([64, 3], (Kind::Float, Device::Cpu));
        match m.load_parameters(&bad) {
            Err(ClipError::Shape { key, .. }) => assert_eq!(key, "meta_net.linear2.weight"),
            other => panic!("expected a shape error, got {other:?}"),
        }
        let _ = bad.remove(1);
        match m.load_parameters(&bad) {
            Err(ClipError::MissingKey(key)) => assert_eq!(key, "meta_net.linear1.weight"),
            other => panic!("expected a missing key, got {other:?}"),
        }
        named[1].1 = Tensor::ones([4, 64], (Kind::Float, Device::Cpu));
        m.load_parameters(&named).unwrap();
        assert_eq!(m.meta_net.linear1.weight.double_value(&[3, 7]), 1.0);
        assert!(m.parameters().iter().all(Tensor::requires_grad));
    }
}

//! The model card's quality numbers: zero-shot accuracy with the dataset's template (all ten
//! classes, and 5-way over the base and novel halves as base-to-novel cells see them) and a
//! linear probe, the few-shot ceiling a prompt cannot pass.
use super::corpus::Corpus;
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{normalize, Clip, ClipError};
use crate::data::fashion_mnist::CLASSNAMES;
use crate::data::transforms::TestTransform;
use crate::data::DatasetName;
use crate::methods::zeroshot::template_features;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quality {
    /// Zero-shot top-1 (%) over all ten classes of the test file.
    pub zero_shot: f64,
    /// Zero-shot 5-way over classes 0-4 (base) and 5-9 (novel), on their test images.
    pub zero_shot_base: f64,
    pub zero_shot_novel: f64,
    /// Logistic regression on the downstream train images' features, tested on the test file.
    pub linear_probe: f64,
    pub test_images: usize,
    pub probe_train_images: usize,
}

/// L2-normalised image features of a whole corpus, in batches.
pub fn corpus_features(clip: &Clip, corpus: &Corpus) -> Tensor {
    let t = TestTransform::new(clip.config.vision.resolution() as usize).expect("positive size");
    let all: Vec<usize> = (0..corpus.len()).collect();
    let parts: Vec<Tensor> = all
        .chunks(1000)
        .map(|c| tch::no_grad(|| normalize(&clip.encode_image(&corpus.test_pixels(&t, c)))))
        .collect();
    Tensor::cat(&parts, 0)
}

fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    let n = labels.numel().max(1) as f64;
    100.0 * crate::methods::coop::correct(logits, labels) as f64 / n
}

/// Zero-shot accuracy over the classes in `classes` (test items of other classes dropped).
fn zero_shot(img: &Tensor, labels: &Tensor, text: &Tensor, classes: &[i64]) -> f64 {
    let cls = Tensor::from_slice(classes);
    let keep = labels
        .unsqueeze(1)
        .eq_tensor(&cls.unsqueeze(0))
        .any_dim(1, false);
    let (img, labels) = (
        img.index_select(0, &keep.nonzero().squeeze_dim(1)),
        labels.masked_select(&keep),
    );
    let logits = img.matmul(&text.index_select(0, &cls).tr());
    let mapped = labels
        .unsqueeze(1)
        .eq_tensor(&cls.unsqueeze(0))
        .to_kind(Kind::Int64)
        .argmax(-1, false);
    accuracy(&logits, &mapped)
}

/// Softmax regression on frozen features: full batch, Adam, a fixed step count and a small L2
/// penalty, so the number is reproducible and needs no validation search.
fn linear_probe(train: &Tensor, train_y: &Tensor, test: &Tensor, test_y: &Tensor) -> f64 {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let head = nn::linear(
        vs.root(),
        train.size()[1],
        CLASSNAMES.len() as i64,
        Default::default(),
    );
    let mut opt = nn::Adam::default().build(&vs, 0.05).expect("optimizer");
    let scale = 10.0;
    for _ in 0..300 {
        let logits = (train * scale).apply(&head);
        let l2: Tensor = vs
            .trainable_variables()
            .iter()
            .map(|v| v.square().sum(Kind::Float))
            .sum();
        let loss = logits.cross_entropy_for_logits(train_y) + l2 * 1e-4;
        opt.backward_step(&loss);
    }
    tch::no_grad(|| accuracy(&(test * scale).apply(&head), test_y))
}

/// The quality of `clip` on the downstream images (`probe_train` for the probe, `test`).
pub fn measure(clip: &Clip, probe_train: &Corpus, test: &Corpus) -> Result<Quality, ClipError> {
    let tok = Tokenizer::new();
    let names: Vec<String> = CLASSNAMES.iter().map(|s| s.to_string()).collect();
    let template = DatasetName::FashionMnist.info().template;
    let text = tch::no_grad(|| template_features(clip, &tok, &names, template))?;
    let img = corpus_features(clip, test);
    let labels = Tensor::from_slice(&test.labels);
    let all: Vec<i64> = (0..10).collect();
    let train_img = corpus_features(clip, probe_train);
    let train_y = Tensor::from_slice(&probe_train.labels);
    Ok(Quality {
        zero_shot: zero_shot(&img, &labels, &text, &all),
        zero_shot_base: zero_shot(&img, &labels, &text, &all[..5]),
        zero_shot_novel: zero_shot(&img, &labels, &text, &all[5..]),
        linear_probe: linear_probe(&train_img, &train_y, &img, &labels),
        test_images: test.len(),
        probe_train_images: probe_train.len(),
    })
}

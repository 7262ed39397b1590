//! The model card's quality numbers, per dataset of the shapes world: zero-shot accuracy with
//! the dataset's template (all classes, and over the base and novel halves as base-to-novel
//! cells see them) and a 16-shot linear probe, the ceiling of what the image features hold.
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{normalize, Clip, ClipError};
use crate::data::shapes::ShapesOptions;
use crate::data::transforms::TestTransform;
use crate::data::{DatasetName, Split};
use crate::methods::zeroshot::template_features;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use subpt_shapes::WorldDataset;
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

/// Quality of the model on one dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quality {
    pub dataset: String,
    pub classes: usize,
    /// Zero-shot top-1 (%) over all classes of the test split.
    pub zero_shot: f64,
    /// Zero-shot over the base and novel halves, each on its own test images.
    pub zero_shot_base: f64,
    pub zero_shot_novel: f64,
    /// Softmax regression on the features of the first 16 train images per class.
    pub linear_probe_16: f64,
    pub test_images: usize,
}

/// L2-normalised features of `per_class` images of every class of `split`, and their labels:
/// the images `subpt-bench prepare shapes` writes with the default data seed.
fn features(clip: &Clip, d: &WorldDataset, split: Split, per_class: usize) -> (Tensor, Tensor) {
    let r = clip.config.vision.resolution() as usize;
    let t = TestTransform::new(r).expect("positive size");
    let items: Vec<(usize, usize)> = (0..d.num_classes())
        .flat_map(|l| (0..per_class).map(move |i| (l, i)))
        .collect();
    let seed = ShapesOptions::default().seed;
    let parts: Vec<Tensor> = items
        .chunks(1000)
        .map(|chunk| {
            let px: Vec<f32> = chunk
                .par_iter()
                .flat_map_iter(|&(l, i)| t.apply(&d.image(seed, split as u64, l, i)))
                .collect();
            let n = chunk.len() as i64;
            let pixels = Tensor::from_slice(&px).view([n, 3, r as i64, r as i64]);
            tch::no_grad(|| normalize(&clip.encode_image(&pixels)))
        })
        .collect();
    let labels: Vec<i64> = items.iter().map(|&(l, _)| l as i64).collect();
    (Tensor::cat(&parts, 0), Tensor::from_slice(&labels))
}

fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    let n = labels.numel().max(1) as f64;
    100.0 * crate::methods::coop::correct(logits, labels) as f64 / n
}

/// Zero-shot accuracy over classes `lo..hi` (test items of other classes dropped).
fn zero_shot(img: &Tensor, labels: &Tensor, text: &Tensor, lo: i64, hi: i64) -> f64 {
    let keep = labels.ge(lo).logical_and(&labels.lt(hi));
    let rows = keep.nonzero().squeeze_dim(1);
    let logits = img
        .index_select(0, &rows)
        .matmul(&text.narrow(0, lo, hi - lo).tr());
    accuracy(&logits, &(labels.masked_select(&keep) - lo))
}

/// Softmax regression on frozen features: full batch, Adam, a fixed step count and a small L2
/// penalty, so the number is reproducible and needs no validation search.
pub fn linear_probe(train: &Tensor, train_y: &Tensor, test: &Tensor, test_y: &Tensor) -> f64 {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let classes = train_y.max().int64_value(&[]) + 1;
    let head = nn::linear(vs.root(), train.size()[1], classes, Default::default());
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

/// The quality of `clip` on catalogue dataset `name` of the shapes world.
pub fn measure(clip: &Clip, name: DatasetName) -> Result<Quality, ClipError> {
    let d = crate::data::shapes::world_dataset(name).expect("a shapes dataset");
    let opts = ShapesOptions::default();
    let names = d.class_names();
    let text =
        tch::no_grad(|| template_features(clip, &Tokenizer::new(), &names, name.info().template))?;
    let (img, labels) = features(clip, d, Split::Test, opts.test_per_class);
    let (train, train_y) = features(clip, d, Split::Train, 16.min(opts.train_per_class));
    let k = names.len() as i64;
    let m = crate::data::subsample::base_new_sizes(names.len()).0 as i64;
    Ok(Quality {
        dataset: name.id().to_string(),
        classes: names.len(),
        zero_shot: zero_shot(&img, &labels, &text, 0, k),
        zero_shot_base: zero_shot(&img, &labels, &text, 0, m),
        zero_shot_novel: zero_shot(&img, &labels, &text, m, k),
        linear_probe_16: linear_probe(&train, &train_y, &img, &labels),
        test_images: labels.numel(),
    })
}

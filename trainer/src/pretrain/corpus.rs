//! The pretraining stream: objects drawn from the shapes world (`subpt_shapes`), each with a
//! caption that describes it, as batches of pixels (through the same PIL-exact transforms the
//! downstream pipeline applies), token ids, and which image fits which caption.
use super::{PretrainConfig, PretrainError};
use crate::clip::tokenizer::{Tokenizer, EOT};
use crate::data::transforms::{SeededRng, TestTransform, TrainTransform, TransformRng};
use crate::methods::zeroshot::imagenet_templates;
use rayon::prelude::*;
use subpt_shapes::captions::{caption, Mentions};
use subpt_shapes::datasets::{random_attributes, stream_seed, PRETRAIN_STREAM};
use subpt_shapes::{render, Attributes};
use tch::Tensor;

/// Templates of the captions: CLIP's 80 and plain ones.
pub fn caption_templates() -> Vec<&'static str> {
    let mut t = imagenet_templates();
    t.extend([
        "a photo of a {}.",
        "a picture of a {}.",
        "{}.",
        "a drawing of a {}.",
    ]);
    t
}

/// One batch of the stream.
pub struct Batch {
    /// [n, 3, R, R], normalised.
    pub pixels: Tensor,
    /// [n, len]: cut after the longest EOT (the causal mask makes later positions irrelevant).
    pub ids: Tensor,
    /// [n images, n captions], 1 where the image fits the caption (at least the diagonal).
    pub fits: Tensor,
    pub attributes: Vec<Attributes>,
}

/// The generator of stream item `index` (the images of a seed are the same in any batching).
pub fn item_rng(seed: u64, index: u64) -> SeededRng {
    SeededRng::for_item(stream_seed(seed, PRETRAIN_STREAM, 0), index)
}

/// Stream items `first..first + n`.
pub fn batch(
    cfg: &PretrainConfig,
    templates: &[&str],
    tok: &Tokenizer,
    first: u64,
    n: usize,
) -> Result<Batch, PretrainError> {
    let r = cfg.architecture.resolution as usize;
    let aug = TrainTransform::new(r).map_err(|e| PretrainError::Config(e.to_string()))?;
    let test_t = TestTransform::new(r).map_err(|e| PretrainError::Config(e.to_string()))?;
    let drawn: Vec<(Vec<f32>, String, Attributes, Mentions)> = (0..n as u64)
        .into_par_iter()
        .map(|j| {
            let mut rng = item_rng(cfg.seed, first + j);
            let a = random_attributes(&mut rng);
            let img = render::draw(&a, &mut rng);
            let (text, m) = caption(&a, &cfg.captions, templates, &mut rng);
            // Shown as a Dassl train view (random resized crop and flip) with probability
            // `augment_p`, the views prompt tuning later shows the frozen tower.
            let px = if rng.uniform(0.0, 1.0) < cfg.augment_p {
                aug.apply(&img, &mut rng)
            } else {
                test_t.apply(&img)
            };
            (px, text, a, m)
        })
        .collect();
    let px: Vec<f32> = drawn.iter().flat_map(|(p, ..)| p.iter().copied()).collect();
    let pixels = Tensor::from_slice(&px).view([n as i64, 3, r as i64, r as i64]);
    let texts: Vec<&str> = drawn.iter().map(|(_, t, ..)| t.as_str()).collect();
    let rows = tok
        .tokenize_all(&texts, 77, false)
        .map_err(crate::clip::ClipError::from)?;
    let eot = |r: &Vec<i64>| r.iter().position(|&t| t == EOT as i64).unwrap_or(76);
    let len = rows.iter().map(eot).max().unwrap_or(0) + 1;
    let flat: Vec<i64> = rows.iter().flat_map(|r| r[..len].to_vec()).collect();
    let fits: Vec<f32> = drawn
        .iter()
        .flat_map(|(_, _, img, _)| {
            drawn
                .iter()
                .map(move |(_, _, a, m)| f32::from(u8::from(m.fits(a, img))))
        })
        .collect();
    Ok(Batch {
        pixels,
        ids: Tensor::from_slice(&flat).view([n as i64, len as i64]),
        fits: Tensor::from_slice(&fits).view([n as i64, n as i64]),
        attributes: drawn.iter().map(|(_, _, a, _)| *a).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_a_pure_function_of_seed_and_position() {
        let cfg = PretrainConfig::default();
        let (t, tok) = (caption_templates(), Tokenizer::new());
        let a = batch(&cfg, &t, &tok, 10, 4).unwrap();
        let b = batch(&cfg, &t, &tok, 10, 4).unwrap();
        assert!(a.pixels.equal(&b.pixels) && a.ids.equal(&b.ids));
        // Item 12 is the same whichever batch holds it.
        let c = batch(&cfg, &t, &tok, 12, 1).unwrap();
        assert!(a.pixels.get(2).equal(&c.pixels.get(0)));
        assert_eq!(a.attributes[2], c.attributes[0]);
        // Every image fits its own caption.
        let diag = a.fits.diagonal(0, 0, 1);
        assert!(diag.eq(1.0).all().int64_value(&[]) == 1);
    }
}

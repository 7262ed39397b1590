//! The text tower on prompts that share their first tokens, computed once.
//!
//! CLIP's text mask is causal, so the hidden states of a shared prefix (SOT + a shared learned
//! context) are the same in every prompt, and nothing after a prompt's EOT reaches its pooled
//! feature. The prefix therefore runs through the blocks once, as a single sequence, keeping
//! each block's keys and values; each prompt then runs only its own tokens up to its EOT, those
//! tokens attending to the prefix's keys/values of the same block and causally to each other.
//! This is the same function as [`TextTower::encode_embeddings`] on the full prompts (up to
//! float summation order) and stays differentiable in the prefix: gradients reach it both
//! through its own hidden states and through the keys/values every tail reads.
use super::text::TextTower;
use tch::Tensor;

impl TextTower {
    /// Features [N, embed] of the prompts `prefix ++ tails[i]`.
    ///
    /// `prefix` [P, W] or [1, P, W] holds the embeddings of the shared first P tokens, `tails`
    /// [N, T, W] those of each prompt's remaining tokens (anything after a prompt's EOT, such as
    /// padding up to the longest tail, is ignored by causality), and `eot` (`[N]`) is each prompt's
    /// EOT index within its tail. Positional embeddings are added here, as in
    /// `encode_embeddings`.
    pub fn encode_shared_prefix(&self, prefix: &Tensor, tails: &Tensor, eot: &Tensor) -> Tensor {
        self.encode_shared_prefix_groups(prefix, &[(tails, eot)])
            .remove(0)
    }

    /// [`TextTower::encode_shared_prefix`] for several groups of tails at once, each padded to
    /// its own length (short class names need not pad to the longest): the prefix runs once,
    /// each group reads its keys/values. Returns each group's features, in order.
    pub fn encode_shared_prefix_groups(
        &self,
        prefix: &Tensor,
        groups: &[(&Tensor, &Tensor)],
    ) -> Vec<Tensor> {
        let prefix = if prefix.dim() == 2 {
            prefix.unsqueeze(0)
        } else {
            prefix.shallow_clone()
        };
        let p = prefix.size()[1];
        let kind = self.dtype();
        let mut tails: Vec<Tensor> = groups
            .iter()
            .map(|(tails, _)| {
                let t = tails.size()[1];
                assert!(
                    p + t <= self.config.context_length,
                    "prefix ({p}) + tail ({t}) tokens exceed the context length {}",
                    self.config.context_length
                );
                tails.to_kind(kind) + self.positional_embedding.narrow(0, p, t)
            })
            .collect();
        let mut shared = prefix.to_kind(kind) + self.positional_embedding.narrow(0, 0, p);
        for block in &self.transformer.blocks {
            let (next, k, v) = block.forward_causal_with_kv(&shared);
            for tail in &mut tails {
                *tail = block.forward_after_prefix(tail, &k, &v);
            }
            shared = next;
        }
        tails
            .iter()
            .zip(groups)
            .map(|(tail, (_, eot))| self.pool(tail, eot))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Activation, TextConfig};
    use crate::random_init::{generate, Spec};
    use crate::{Clip, Precision};
    use tch::{Device, Kind, Tensor};

    fn tiny_clip(heads: i64) -> Clip {
        let spec = Spec {
            text: TextConfig {
                heads,
                ..Spec::tiny_vit().text
            },
            ..Spec::tiny_vit()
        };
        Clip::from_tensors(
            generate(&spec, 5),
            Activation::QuickGelu,
            Precision::Fp32,
            Device::Cpu,
        )
        .unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        ((a - b).abs().max() / b.abs().max()).double_value(&[])
    }

    /// Random prompts [N, L, W] whose rows agree on their first `p` tokens, with ids marking
    /// the EOT (the row's largest id) at `eot[i]`.
    fn prompts(clip: &Clip, p: i64, eot: &[i64]) -> (Tensor, Tensor) {
        let n = eot.len() as i64;
        let l = clip.config.text.context_length;
        let w = clip.text.width();
        let shared = Tensor::randn([1, p, w], (Kind::Float, Device::Cpu)).expand([n, p, w], false);
        let rest = Tensor::randn([n, l - p, w], (Kind::Float, Device::Cpu));
        let emb = Tensor::cat(&[shared, rest], 1);
        let ids = Tensor::zeros([n, l], (Kind::Int64, Device::Cpu));
        for (i, &e) in eot.iter().enumerate() {
            let _ = ids.get(i as i64).get(e).fill_(49407);
        }
        (emb, ids)
    }

    #[test]
    fn shared_prefix_matches_full_prompts() {
        tch::manual_seed(0);
        for heads in [1, 4] {
            let clip = tiny_clip(heads);
            let p = 5;
            // Tails of 1 token (EOT right after the prefix) up to the whole context.
            let eot = [5, 9, 6, 76, 12];
            let (emb, ids) = prompts(&clip, p, &eot);
            let plain = clip.text.encode_embeddings(&emb, &ids);
            let t = 76 + 1 - p;
            let tail_eot = Tensor::from_slice(&eot) - p;
            let fast = clip.text.encode_shared_prefix(
                &emb.get(0).narrow(0, 0, p),
                &emb.narrow(1, p, t),
                &tail_eot,
            );
            let r = max_rel(&fast, &plain);
            assert!(r < 1e-5, "heads {heads}: max relative difference {r}");
        }
    }

    #[test]
    fn padding_after_eot_is_ignored() {
        tch::manual_seed(1);
        let clip = tiny_clip(2);
        let p = 3;
        let (emb, _) = prompts(&clip, p, &[10, 7]);
        let tails = emb.narrow(1, p, 12);
        let eot = Tensor::from_slice(&[10 - p, 7 - p]);
        let prefix = emb.get(0).narrow(0, 0, p);
        let a = clip.text.encode_shared_prefix(&prefix, &tails, &eot);
        // Scramble everything after each EOT, and lengthen the padding.
        let noisy = Tensor::cat(
            &[
                tails.shallow_clone(),
                Tensor::randn([2, 4, clip.text.width()], (Kind::Float, Device::Cpu)),
            ],
            1,
        );
        let _ = noisy
            .get(1)
            .narrow(0, 7 - p + 1, 12 + 4 - (7 - p + 1))
            .normal_(0.0, 3.0);
        let b = clip.text.encode_shared_prefix(&prefix, &noisy, &eot);
        assert!(max_rel(&b, &a) < 1e-6);
    }
}

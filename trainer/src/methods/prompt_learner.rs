//! CoOp's prompt learner: learnable context vectors placed around frozen class-name token
//! embeddings, encoded by CLIP's text tower. Only the context is trainable.
use crate::clip::tokenizer::Tokenizer;
use crate::clip::{Clip, ClipError};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Where the class name sits relative to the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ClassTokenPosition {
    #[default]
    End,
    Middle,
    Front,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptConfig {
    /// Number of context vectors (ignored with a word initialisation: its word count is used).
    pub n_ctx: usize,
    /// Initial context words (e.g. "a photo of a"); `None` draws N(0, 0.02^2).
    pub ctx_init: Option<String>,
    /// One context per class (CSC) instead of one shared context.
    pub class_specific: bool,
    pub position: ClassTokenPosition,
    /// ProGrad's initialisation: `n_ctx` slots are kept, the initial words fill the last of
    /// them (as many slots as the text has words, each taking the embedding of the token at
    /// its position: the official code counts words and copies tokens) and the leading slots
    /// start at zero. Off: CoOp's, the context is the words' tokens and `n_ctx` their count.
    #[serde(default)]
    pub init_in_last_slots: bool,
}

impl Default for PromptConfig {
    fn default() -> Self {
        PromptConfig {
            n_ctx: 16,
            ctx_init: None,
            class_specific: false,
            position: ClassTokenPosition::End,
            init_in_last_slots: false,
        }
    }
}

impl PromptConfig {
    /// Context length actually used: a word initialisation fixes it to its word count, as CoOp
    /// does (`len(ctx_init.split(" "))`).
    pub fn effective_n_ctx(&self) -> usize {
        match &self.ctx_init {
            Some(_) if self.init_in_last_slots => self.n_ctx,
            Some(words) => words.split(' ').count(),
            None => self.n_ctx,
        }
    }

    /// The text the context slots stand for in a prompt: the initial words, after one "X" per
    /// leading slot with ProGrad's initialisation, or one "X" per slot without words.
    pub fn ctx_words(&self) -> String {
        let n_ctx = self.effective_n_ctx();
        match &self.ctx_init {
            Some(words) => {
                let lead = n_ctx.saturating_sub(words.split(' ').count());
                let mut w = vec!["X"; lead];
                w.push(words);
                w.join(" ")
            }
            None => vec!["X"; n_ctx].join(" "),
        }
    }
}

/// Frozen token embeddings of one class list around the context slots.
pub struct PromptSet {
    /// SOT embedding per class [n_cls, 1, W].
    prefix: Tensor,
    /// Embeddings after the context slots [n_cls, L - 1 - n_ctx, W] (name, ".", EOT, padding).
    suffix: Tensor,
    /// Token ids of the full prompts [n_cls, L]; their argmax is the EOT position.
    pub ids: Tensor,
    /// BPE length of each class name (for middle/front positions).
    name_lens: Vec<i64>,
    n_ctx: i64,
    /// The suffix up to the latest EOT [n_cls, T, W], and each prompt's EOT within it: the
    /// shared-context path without buckets ([`PromptSet::encode_one_bucket`]).
    tails: Tensor,
    tail_eot: Tensor,
    /// The classes grouped by tail length for the shared-context path (see [`tail_buckets`]).
    buckets: Vec<TailBucket>,
    /// Class order -> position in the buckets' concatenated output.
    unbucket: Tensor,
}

/// Classes whose tails are encoded together, padded to the longest of them.
struct TailBucket {
    tails: Tensor,
    eot: Tensor,
}

/// Fewest classes worth a bucket of their own: below this a run of short tails pads up to the
/// next length instead, as a separate pass through every block costs more than the padding.
pub const MIN_BUCKET: usize = 16;

/// Groups classes (given their tail lengths, EOT included) into buckets of ascending padded
/// length: each distinct length is a bucket, and one with fewer than [`MIN_BUCKET`] classes
/// joins the next longer one. Returns each bucket's classes and padded length.
pub fn tail_buckets(lengths: &[i64]) -> Vec<(Vec<usize>, i64)> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    let mut out: Vec<(Vec<usize>, i64)> = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        pending.push(i);
        let last_of_length = order.get(k + 1).is_none_or(|&j| lengths[j] != lengths[i]);
        if last_of_length && (pending.len() >= MIN_BUCKET || k + 1 == order.len()) {
            out.push((std::mem::take(&mut pending), lengths[i]));
        }
    }
    out
}

/// `classname.replace("_", " ")`, the name as prompts show it.
pub fn prompt_name(classname: &str) -> String {
    classname.replace('_', " ")
}

impl PromptSet {
    /// Tokenizes `"<context words> <name>."` for each class and keeps the frozen parts.
    pub fn new(
        clip: &Clip,
        tok: &Tokenizer,
        classnames: &[String],
        ctx_words: &str,
        n_ctx: usize,
    ) -> Result<Self, ClipError> {
        let names: Vec<String> = classnames.iter().map(|c| prompt_name(c)).collect();
        let texts: Vec<String> = names.iter().map(|n| format!("{ctx_words} {n}.")).collect();
        let ids = clip.tokenize(tok, &texts, false)?.to_device(clip.device);
        let emb = clip.text.embed_tokens(&ids);
        let l = ids.size()[1];
        let n = n_ctx as i64;
        let suffix = emb.narrow(1, 1 + n, l - 1 - n);
        // The EOT is the last token of "<context> <name>.", so it always follows the context.
        let tail_eot = ids.argmax(-1, false) - (1 + n);
        let longest = if names.is_empty() {
            0
        } else {
            tail_eot.max().int64_value(&[]) + 1
        };
        let tails = suffix.narrow(1, 0, longest);
        let lengths: Vec<i64> =
            Vec::<i64>::try_from(&(&tail_eot + 1).to_device(tch::Device::Cpu)).unwrap_or_default();
        let groups = tail_buckets(&lengths);
        let device = ids.device();
        let index = |v: &[usize]| {
            let v: Vec<i64> = v.iter().map(|&i| i as i64).collect();
            Tensor::from_slice(&v).to_device(device)
        };
        let flat: Vec<usize> = groups.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        let buckets = groups
            .iter()
            .map(|(g, len)| {
                let at = index(g);
                TailBucket {
                    tails: tails.index_select(0, &at).narrow(1, 0, *len),
                    eot: tail_eot.index_select(0, &at),
                }
            })
            .collect();
        // unbucket[class] = its row in the concatenated bucket outputs.
        let mut inverse = vec![0usize; flat.len()];
        for (row, &class) in flat.iter().enumerate() {
            inverse[class] = row;
        }
        Ok(PromptSet {
            prefix: emb.narrow(1, 0, 1),
            buckets,
            unbucket: index(&inverse),
            tails,
            tail_eot,
            suffix,
            ids,
            name_lens: names.iter().map(|n| tok.encode(n).len() as i64).collect(),
            n_ctx: n,
        })
    }

    pub fn len(&self) -> usize {
        self.name_lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.name_lens.is_empty()
    }

    /// How many tail-length buckets the shared-context path runs (see [`tail_buckets`]).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Whether [`Self::encode`] takes the shared-prefix path for this context and position: one
    /// context for all classes, placed before the name.
    pub fn shares_prefix(&self, ctx: &Tensor, position: ClassTokenPosition) -> bool {
        ctx.dim() == 2 && position == ClassTokenPosition::End && !self.is_empty()
    }

    /// Text features [n_cls, embed] (compute dtype, unnormalised) of the prompts with `ctx`,
    /// differentiable in `ctx`. With a shared context at the end position, the SOT + context
    /// prefix is encoded once and each class only up to its EOT (see
    /// [`TextTower::encode_shared_prefix`]); otherwise, with the same result, the full prompts.
    ///
    /// [`TextTower::encode_shared_prefix`]: crate::clip::text::TextTower::encode_shared_prefix
    pub fn encode(&self, clip: &Clip, ctx: &Tensor, position: ClassTokenPosition) -> Tensor {
        if self.shares_prefix(ctx, position) {
            let ctx = ctx.to_kind(self.prefix.kind()).unsqueeze(0);
            let prefix = Tensor::cat(&[&self.prefix.narrow(0, 0, 1), &ctx], 1);
            let groups: Vec<(&Tensor, &Tensor)> =
                self.buckets.iter().map(|b| (&b.tails, &b.eot)).collect();
            let parts = clip.text.encode_shared_prefix_groups(&prefix, &groups);
            match parts.len() {
                1 => parts[0].index_select(0, &self.unbucket),
                _ => Tensor::cat(&parts, 0).index_select(0, &self.unbucket),
            }
        } else {
            self.encode_full(clip, ctx, position)
        }
    }

    /// The shared-context path with every tail padded to the longest (one bucket): what
    /// [`Self::encode`] did before tail-length buckets, kept for benchmarks and tests.
    pub fn encode_one_bucket(&self, clip: &Clip, ctx: &Tensor) -> Tensor {
        let ctx = ctx.to_kind(self.prefix.kind()).unsqueeze(0);
        let prefix = Tensor::cat(&[&self.prefix.narrow(0, 0, 1), &ctx], 1);
        clip.text
            .encode_shared_prefix(&prefix, &self.tails, &self.tail_eot)
    }

    /// [`Self::encode`] through the full 77-token prompts, whatever the context and position.
    pub fn encode_full(&self, clip: &Clip, ctx: &Tensor, position: ClassTokenPosition) -> Tensor {
        clip.text
            .encode_embeddings(&self.assemble(ctx, position), &self.ids)
    }

    /// Prompt embeddings [n_cls, L, W] with `ctx` ([n_ctx, W] shared or [n_cls, n_ctx, W]).
    pub fn assemble(&self, ctx: &Tensor, position: ClassTokenPosition) -> Tensor {
        let n_cls = self.len() as i64;
        let ctx = ctx.to_kind(self.prefix.kind());
        let ctx = if ctx.dim() == 2 {
            ctx.unsqueeze(0).expand([n_cls, -1, -1], false)
        } else {
            ctx
        };
        match position {
            ClassTokenPosition::End => Tensor::cat(&[&self.prefix, &ctx, &self.suffix], 1),
            ClassTokenPosition::Middle | ClassTokenPosition::Front => {
                let half = self.n_ctx / 2;
                let rows: Vec<Tensor> = (0..n_cls)
                    .map(|i| {
                        let nl = self.name_lens[i as usize];
                        let pre = self.prefix.narrow(0, i, 1);
                        let suf = self.suffix.narrow(0, i, 1);
                        let class = suf.narrow(1, 0, nl);
                        let rest = suf.narrow(1, nl, suf.size()[1] - nl);
                        let c = ctx.narrow(0, i, 1);
                        if position == ClassTokenPosition::Middle {
                            let c1 = c.narrow(1, 0, half);
                            let c2 = c.narrow(1, half, self.n_ctx - half);
                            Tensor::cat(&[pre, c1, class, c2, rest], 1)
                        } else {
                            Tensor::cat(&[pre, class, c, rest], 1)
                        }
                    })
                    .collect();
                Tensor::cat(&rows, 0)
            }
        }
    }
}

/// The trainable context plus the class prompts it is read with.
pub struct PromptLearner {
    pub config: PromptConfig,
    /// Trainable context, fp32 ([n_ctx, W], or [n_cls, n_ctx, W] with CSC).
    pub ctx: Tensor,
    pub classes: PromptSet,
    /// The context placeholder text ("X X ... X" or the init words).
    pub ctx_words: String,
}

impl PromptLearner {
    /// Builds the prompts for `classnames` and initialises the context (seeded by the caller
    /// through `tch::manual_seed` for random init).
    pub fn new(
        clip: &Clip,
        tok: &Tokenizer,
        classnames: &[String],
        config: PromptConfig,
    ) -> Result<Self, ClipError> {
        let n_ctx = config.effective_n_ctx();
        let width = clip.text.width();
        let n_cls = classnames.len() as i64;
        let ctx_words = config.ctx_words();
        let ctx = match &config.ctx_init {
            Some(words) => {
                let ids = clip.tokenize(tok, &[words.as_str()], false)?;
                let emb = clip.text.embed_tokens(&ids.to_device(clip.device));
                let n_words = words.split(' ').count().min(n_ctx) as i64;
                let v = emb.get(0).narrow(0, 1, n_words).to_kind(Kind::Float);
                let v = match n_ctx as i64 - n_words {
                    0 => v,
                    lead => Tensor::cat(
                        &[Tensor::zeros([lead, width], (Kind::Float, clip.device)), v],
                        0,
                    ),
                };
                if config.class_specific {
                    v.unsqueeze(0).repeat([n_cls, 1, 1])
                } else {
                    v
                }
            }
            None => {
                let shape: Vec<i64> = if config.class_specific {
                    vec![n_cls, n_ctx as i64, width]
                } else {
                    vec![n_ctx as i64, width]
                };
                Tensor::randn(&shape, (Kind::Float, clip.device)) * 0.02
            }
        };
        let classes = PromptSet::new(clip, tok, classnames, &ctx_words, n_ctx)?;
        Ok(PromptLearner {
            config,
            ctx: ctx.detach().set_requires_grad(true),
            classes,
            ctx_words,
        })
    }

    /// Replaces the context (e.g. a restart point or a loaded checkpoint), keeping it trainable.
    pub fn set_context(&mut self, ctx: &Tensor) -> Result<(), ClipError> {
        if ctx.size() != self.ctx.size() {
            return Err(ClipError::Shape {
                key: "ctx".into(),
                expected: self.ctx.size(),
                found: ctx.size(),
            });
        }
        // A copy: SGD updates the context in place and must not write into the caller's tensor.
        self.ctx = ctx
            .to_kind(Kind::Float)
            .to_device(self.ctx.device())
            .detach()
            .copy()
            .set_requires_grad(true);
        Ok(())
    }

    /// Unnormalised text features [n_cls, embed] of the class prompts (differentiable in ctx).
    pub fn class_features(&self, clip: &Clip) -> Tensor {
        self.classes
            .encode(clip, &self.ctx, self.config.position)
            .to_kind(Kind::Float)
    }

    /// Features of another class list (e.g. the novel classes at test time) read with this
    /// context and class position. Class-specific contexts need the training class list.
    pub fn features_for(&self, clip: &Clip, set: &PromptSet) -> Tensor {
        let prompts = set.assemble(&self.ctx, self.config.position);
        clip.text
            .encode_embeddings(&prompts, &set.ids)
            .to_kind(Kind::Float)
    }

    /// Features of another name list read with the same (shared, end-position) context: NFL.
    pub fn extra_features(&self, clip: &Clip, set: &PromptSet) -> Tensor {
        set.encode(clip, &self.ctx, ClassTokenPosition::End)
            .to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_whole_lengths_and_small_ones_pad_up() {
        // 20 of length 3, 2 of length 4, 16 of length 6, 1 of length 9.
        let mut lengths = vec![3; 20];
        lengths.extend([4, 4]);
        lengths.extend(vec![6; 16]);
        lengths.push(9);
        let b = tail_buckets(&lengths);
        let sizes: Vec<(usize, i64)> = b.iter().map(|(g, l)| (g.len(), *l)).collect();
        assert_eq!(sizes, vec![(20, 3), (18, 6), (1, 9)]);
        let mut all: Vec<usize> = b.iter().flat_map(|(g, _)| g.clone()).collect();
        all.sort();
        assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
        // Few classes: one bucket at the longest tail, as without buckets.
        assert_eq!(tail_buckets(&[5, 2, 7]), vec![(vec![1, 0, 2], 7)]);
    }
}

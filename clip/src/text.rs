//! CLIP's text tower with an entry point for prompt embeddings: the prompt learner builds token
//! embeddings itself (learned context + frozen class tokens) and still needs the EOT position.
use super::config::{Activation, TextConfig};
use super::layers::{LayerNorm, Scope, StackConfig, Transformer};
use super::ClipError;
use tch::{Kind, Tensor};

pub struct TextTower {
    pub config: TextConfig,
    token_embedding: Tensor,
    pub(super) positional_embedding: Tensor,
    pub transformer: Transformer,
    ln_final: LayerNorm,
    text_projection: Tensor,
}

impl TextTower {
    /// The tower from the state dict's top level, where OpenAI keeps it.
    pub fn load(
        mut p: Scope,
        config: &TextConfig,
        embed_dim: i64,
        activation: Activation,
    ) -> Result<Self, ClipError> {
        let w = config.width;
        let stack = StackConfig {
            width: w,
            layers: config.layers,
            heads: config.heads,
            activation,
        };
        Ok(TextTower {
            token_embedding: p.get("token_embedding.weight", &[config.vocab_size, w])?,
            positional_embedding: p.get("positional_embedding", &[config.context_length, w])?,
            transformer: Transformer::load(p.pp("transformer"), stack)?,
            ln_final: LayerNorm::load(p.pp("ln_final"), w)?,
            text_projection: p.get("text_projection", &[w, embed_dim])?,
            config: config.clone(),
        })
    }

    /// Token embeddings [N, L, W] of ids [N, L]. Frozen towers keep no graph (their weights
    /// need no gradient); a tower being pretrained does.
    pub fn embed_tokens(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.token_embedding, ids, -1, false, false)
    }

    /// Features [N, embed] of prompts given as embeddings [N, L, W]; `ids` [N, L] are the token
    /// ids whose argmax (the EOT, CLIP's largest id) selects the pooled position.
    ///
    /// The mask is causal, so nothing after the last EOT reaches a pooled position: sequences
    /// are cut there (77 tokens down to about 10 for class prompts), the same function at a
    /// fraction of the cost.
    pub fn encode_embeddings(&self, embeddings: &Tensor, ids: &Tensor) -> Tensor {
        let eot = ids.argmax(-1, false);
        let full = embeddings.size()[1];
        let l = if eot.numel() == 0 {
            full
        } else {
            (eot.max().int64_value(&[]) + 1).min(full)
        };
        let x = embeddings
            .narrow(1, 0, l)
            .to_kind(self.token_embedding.kind())
            + self.positional_embedding.narrow(0, 0, l);
        let x = self.transformer.forward(&x, true);
        self.pool(&x, &eot)
    }

    /// `ln_final` at the pooled positions, then the projection. LayerNorm is per token, so
    /// normalising only the selected rows gives the same result as normalising all of them.
    pub fn pool(&self, hidden: &Tensor, positions: &Tensor) -> Tensor {
        let n = hidden.size()[0];
        let rows = Tensor::arange(n, (Kind::Int64, hidden.device()));
        let picked = hidden.index(&[Some(rows), Some(positions.to_device(hidden.device()))]);
        self.ln_final.forward(&picked).matmul(&self.text_projection)
    }

    /// Features [N, embed] of token ids [N, context_length].
    pub fn encode(&self, ids: &Tensor) -> Tensor {
        self.encode_embeddings(&self.embed_tokens(ids), ids)
    }

    pub fn width(&self) -> i64 {
        self.config.width
    }

    pub fn dtype(&self) -> Kind {
        self.token_embedding.kind()
    }
}

//! OpenAI CLIP's byte-level BPE tokenizer (placeholder API; implementation pending).

/// Start-of-text id.
pub const SOT: u32 = 49406;
/// End-of-text id (also the largest id, which the text tower's argmax relies on).
pub const EOT: u32 = 49407;
/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("text {text:?} is {len} tokens long, more than the context length {max} (ask for truncation to cut it)")]
    TooLong {
        text: String,
        len: usize,
        max: usize,
    },
    #[error("bad vocabulary: {0}")]
    Vocab(String),
}

pub struct Tokenizer {}

impl Tokenizer {
    /// The tokenizer with OpenAI's vocabulary (embedded in the binary).
    pub fn new() -> Self {
        unimplemented!()
    }
    /// BPE ids of `text` after CLIP's cleaning, without SOT/EOT.
    pub fn encode(&self, _text: &str) -> Vec<u32> {
        unimplemented!()
    }
    /// `[SOT] + encode(text) + [EOT]`, zero-padded to `context_length`.
    /// Over-long text is an error unless `truncate`, which keeps `context_length` ids and sets the last to EOT.
    pub fn tokenize(
        &self,
        _text: &str,
        _context_length: usize,
        _truncate: bool,
    ) -> Result<Vec<i64>, TokenizerError> {
        unimplemented!()
    }
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

//! OpenAI CLIP's byte-level BPE tokenizer (`clip/simple_tokenizer.py` + `clip.tokenize`).
//!
//! Pipeline, as CLIP's `encode` runs it:
//! 1. cleaning (sub-module `clean`): `ftfy.fix_text` → `html.unescape` twice → strip →
//!    collapse every White_Space run to one space → strip → lowercase;
//! 2. pre-tokenisation with CLIP's regex (the two special tokens, the English clitics, letter
//!    runs, single digits, runs of anything else; whitespace is dropped);
//! 3. each piece's UTF-8 bytes are mapped to GPT-2's printable byte alphabet, `</w>` is
//!    attached to the last symbol and the lowest-ranked adjacent pair is merged until none
//!    is left in the 48 894 merges.
//!
//! ftfy (6.3, default configuration) is reproduced fixer by fixer, in its order and with its
//! repeat-until-stable loop per line: ftfy's own entity decoding (off for the rest of the text
//! once a line holds `<`), C1 controls read as Windows-1252, Latin ligatures split, fullwidth /
//! halfwidth forms narrowed, curly quotes straightened, line breaks unified, ANSI terminal
//! escapes and invisible control characters removed, NFC.
//!
//! Not reproduced:
//! - mojibake repair (`fix_encoding`: re-decoding text that was decoded with the wrong codec,
//!   e.g. `"CafÃ©"` → `"Café"`, with its byte-A0 restoration, lossy-sequence and
//!   inconsistent-UTF-8 passes). It is a heuristic driven by ftfy's "badness" statistics, so
//!   ids differ from CLIP's wherever it fires: on real mojibake, and on rare legitimate runs of
//!   Latin-1 letters and symbols that look like it (ftfy turns `"É¤"` into `"ɤ"`). Plain ASCII
//!   (all class names and prompts here) never triggers it, and a sweep of every Unicode 14
//!   character between two ASCII letters matches CLIP exactly.
//! - `fix_surrogates`: a Rust `&str` cannot hold lone surrogates.
//! - Unicode version drift: Python 3.11 normalises and lowercases with Unicode 14 tables; the
//!   Rust side uses newer ones, which only matters for characters assigned after 14.0.
//!
//! Quirk kept on purpose: under CLIP's case-insensitive regex, U+0345 (combining ypogegrammeni)
//! is matched by none of the branches, so CLIP silently drops it; so does this tokenizer.
mod clean;
mod html;

use flate2::read::GzDecoder;
use regex::Regex;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

/// Start-of-text id.
pub const SOT: u32 = 49406;
/// End-of-text id (also the largest id, which the text tower's argmax relies on).
pub const EOT: u32 = 49407;
/// CLIP's context length.
pub const CONTEXT_LENGTH: usize = 77;
/// Number of ids: 256 bytes, 256 word-final bytes, 48 894 merges, SOT and EOT.
pub const VOCAB_SIZE: usize = 49408;

const N_MERGES: usize = 49152 - 256 - 2;
const SOT_TEXT: &str = "<|startoftext|>";
const EOT_TEXT: &str = "<|endoftext|>";
const END_OF_WORD: &str = "</w>";

static EMBEDDED_VOCAB: &[u8] = include_bytes!("../../assets/bpe_simple_vocab_16e6.txt.gz");

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
    #[error("token id {0} is not in the vocabulary (ids go up to {max})", max = VOCAB_SIZE - 1)]
    UnknownId(u32),
}

/// GPT-2's byte alphabet, in vocabulary order: the printable Latin-1 bytes keep their code
/// point, the others (controls, space, 0x7F-0xA0, 0xAD) move to U+0100 onwards.
fn byte_alphabet() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut out: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    let moved = (0..=255u8).filter(|&b| !printable(b));
    for (b, cp) in moved.zip(256u32..) {
        out.push((b, char::from_u32(cp).expect("below U+0200")));
    }
    out
}

/// The parsed vocabulary: id ↔ symbol and the merge table keyed by id pairs.
struct Vocab {
    symbols: Vec<String>,
    /// (left id, right id) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's symbol (not word-final); word-final is `+ 256`.
    byte_ids: [u32; 256],
    char_to_byte: HashMap<char, u8>,
}

impl Vocab {
    fn parse_gz(gz: &[u8]) -> Result<Self, TokenizerError> {
        let mut text = String::new();
        GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| TokenizerError::Vocab(format!("cannot gunzip the merges file: {e}")))?;
        // Only the first merges are CLIP's; the file holds many more.
        let lines: Vec<&str> = text.split('\n').take(N_MERGES + 1).collect();
        if lines.len() < N_MERGES + 1 {
            return Err(TokenizerError::Vocab(format!(
                "merges file has {} lines, need {}",
                lines.len(),
                N_MERGES + 1
            )));
        }
        let alphabet = byte_alphabet();
        let mut symbols: Vec<String> = alphabet.iter().map(|&(_, c)| c.to_string()).collect();
        symbols.extend(alphabet.iter().map(|&(_, c)| format!("{c}{END_OF_WORD}")));
        let mut pairs = Vec::with_capacity(N_MERGES);
        for (i, line) in lines[1..=N_MERGES].iter().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(TokenizerError::Vocab(format!(
                    "line {} of the merges file is {line:?}, not two symbols",
                    i + 2
                )));
            };
            symbols.push(format!("{a}{b}"));
            pairs.push((a, b, i + 2));
        }
        symbols.push(SOT_TEXT.to_string());
        symbols.push(EOT_TEXT.to_string());
        // Later duplicates win, as in Python's dict(zip(vocab, range(...))).
        let ids: HashMap<&str, u32> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let mut merges = HashMap::with_capacity(N_MERGES);
        for (rank, (a, b, line)) in pairs.into_iter().enumerate() {
            let lookup = |s: &str| {
                ids.get(s).copied().ok_or_else(|| {
                    TokenizerError::Vocab(format!(
                        "line {line}: symbol {s:?} is not in the vocabulary"
                    ))
                })
            };
            let key = (lookup(a)?, lookup(b)?);
            let merged = lookup(&format!("{a}{b}"))?;
            // A repeated pair keeps its last rank, as in Python's dict(zip(merges, range(...))).
            merges.insert(key, (rank as u32, merged));
        }
        let mut byte_ids = [0u32; 256];
        let mut char_to_byte = HashMap::with_capacity(256);
        for (id, &(b, c)) in alphabet.iter().enumerate() {
            byte_ids[b as usize] = id as u32;
            char_to_byte.insert(c, b);
        }
        Ok(Self {
            symbols,
            merges,
            byte_ids,
            char_to_byte,
        })
    }

    /// BPE of one pre-token: byte symbols, word-final marker on the last, then merge the
    /// lowest-ranked adjacent pair (every non-overlapping occurrence, left to right) until no
    /// adjacent pair is a known merge.
    fn bpe(&self, piece: &str) -> Vec<u32> {
        let mut word: Vec<u32> = piece.bytes().map(|b| self.byte_ids[b as usize]).collect();
        if let Some(last) = word.last_mut() {
            *last += 256;
        }
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|w| {
                    self.merges
                        .get(&(w[0], w[1]))
                        .map(|&(r, m)| (r, w[0], w[1], m))
                })
                .min_by_key(|&(r, ..)| r);
            let Some((_, first, second, merged)) = best else {
                break;
            };
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        word
    }
}

fn embedded_vocab() -> Arc<Vocab> {
    static VOCAB: OnceLock<Arc<Vocab>> = OnceLock::new();
    VOCAB
        .get_or_init(|| {
            Arc::new(
                Vocab::parse_gz(EMBEDDED_VOCAB)
                    .expect("the embedded CLIP vocabulary is well-formed"),
            )
        })
        .clone()
}

fn pre_tokenizer() -> &'static Regex {
    static PAT: OnceLock<Regex> = OnceLock::new();
    PAT.get_or_init(|| {
        // Only the literal branches are case-insensitive: CLIP's IGNORECASE also takes U+0345
        // out of the "other" class (it folds to iota, a letter) while \p{L} still rejects it.
        Regex::new(
            r"(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+",
        )
        .expect("pre-tokenisation pattern")
    })
}

/// CLIP's tokenizer. Cheap to create (the vocabulary is parsed once per process and shared);
/// each instance memoises BPE results per pre-token, and is `Sync`.
pub struct Tokenizer {
    vocab: Arc<Vocab>,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl Tokenizer {
    /// The tokenizer with OpenAI's vocabulary (embedded in the binary).
    pub fn new() -> Self {
        Self::with_vocab(embedded_vocab())
    }

    /// A tokenizer over another merges file in CLIP's format (gzip, header line, then
    /// 48 894 `"a b"` merges).
    pub fn from_merges_gz(gz: &[u8]) -> Result<Self, TokenizerError> {
        Ok(Self::with_vocab(Arc::new(Vocab::parse_gz(gz)?)))
    }

    fn with_vocab(vocab: Arc<Vocab>) -> Self {
        Self {
            vocab,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Number of ids, SOT and EOT included.
    pub fn vocab_size(&self) -> usize {
        self.vocab.symbols.len()
    }

    /// BPE ids of `text` after CLIP's cleaning, without SOT/EOT.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let text = clean::clean(text);
        let mut ids = Vec::new();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for piece in pre_tokenizer().find_iter(&text).map(|m| m.as_str()) {
            match piece {
                SOT_TEXT => ids.push(SOT),
                EOT_TEXT => ids.push(EOT),
                _ => match cache.get(piece) {
                    Some(cached) => ids.extend_from_slice(cached),
                    None => {
                        let bpe = self.vocab.bpe(piece);
                        ids.extend_from_slice(&bpe);
                        cache.insert(piece.to_string(), bpe);
                    }
                },
            }
        }
        ids
    }

    /// How many BPE ids `name` takes (CoOp's `name_lens`: `len(_tokenizer.encode(name))`).
    pub fn name_len(&self, name: &str) -> usize {
        self.encode(name).len()
    }

    /// `[SOT] + encode(text) + [EOT]`, zero-padded to `context_length`.
    /// Over-long text is an error unless `truncate`, which keeps `context_length` ids and sets the last to EOT.
    pub fn tokenize(
        &self,
        text: &str,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<i64>, TokenizerError> {
        let body = self.encode(text);
        let len = body.len() + 2;
        if len > context_length && (!truncate || context_length == 0) {
            return Err(TokenizerError::TooLong {
                text: text.to_string(),
                len,
                max: context_length,
            });
        }
        let mut ids = Vec::with_capacity(context_length);
        ids.push(i64::from(SOT));
        ids.extend(body.iter().map(|&i| i64::from(i)));
        ids.push(i64::from(EOT));
        if len > context_length {
            ids.truncate(context_length);
            *ids.last_mut().expect("context_length > 0") = i64::from(EOT);
        }
        ids.resize(context_length, 0);
        Ok(ids)
    }

    /// [`Tokenizer::tokenize`] of each text, in order (a `[texts.len(), context_length]` batch).
    pub fn tokenize_all<S: AsRef<str>>(
        &self,
        texts: &[S],
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<Vec<i64>>, TokenizerError> {
        texts
            .iter()
            .map(|t| self.tokenize(t.as_ref(), context_length, truncate))
            .collect()
    }

    /// Text of `ids` as CLIP's `decode` gives it: symbols concatenated, bytes restored
    /// (invalid UTF-8 replaced by U+FFFD), every `</w>` turned into a space.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let mut joined = String::new();
        for &id in ids {
            let symbol = self
                .vocab
                .symbols
                .get(id as usize)
                .ok_or(TokenizerError::UnknownId(id))?;
            joined.push_str(symbol);
        }
        let bytes: Vec<u8> = joined
            .chars()
            .filter_map(|c| self.vocab.char_to_byte.get(&c).copied())
            .collect();
        Ok(String::from_utf8_lossy(&bytes).replace(END_OF_WORD, " "))
    }
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;

//! subpt-trainer: everything one benchmark cell needs.
//!
//! `clip` is OpenAI's CLIP re-expressed in tch (tokenizer, towers, weight loaders); `data` reads
//! CoOp-layout datasets and draws Dassl-identical few-shot subsets.
pub mod cache;
pub use subpt_clip as clip;
pub mod comm;
pub mod data;
pub mod device;
pub mod digest;
pub mod engine;
pub mod features;
/// File errors naming their file and atomic writes, a crate of its own.
pub use subpt_io as io;
pub mod methods;
/// Python pickles (Dassl's few-shot caches, torch.save archives), a crate of its own.
pub use subpt_pickle as pickle;
pub mod pretrain;
pub mod store;
pub mod threads;
pub mod views;

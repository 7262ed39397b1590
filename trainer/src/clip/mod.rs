//! CLIP as OpenAI defines it, in tch.
pub mod tokenizer;
pub mod torch_archive;

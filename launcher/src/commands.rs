//! Implementations of the model-level subcommands (inspect, encode, tokenize).
use anyhow::Result;
use std::path::{Path, PathBuf};
use subpt_trainer::clip::tokenizer::Tokenizer;

#[derive(clap::Args)]
pub struct EncodeArgs {
    #[arg(long)]
    pub weights: PathBuf,
    #[arg(long = "text")]
    pub texts: Vec<String>,
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Already preprocessed pixels: a safetensors file holding `pixels` [N, 3, R, R] (f32).
    #[arg(long)]
    pub pixels: Option<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn inspect(_weights: &Path, _json: bool) -> Result<()> {
    anyhow::bail!("inspect: not built yet")
}

pub fn encode(_args: &EncodeArgs) -> Result<()> {
    anyhow::bail!("encode: not built yet")
}

pub fn tokenize(texts: &[String], context_length: usize, truncate: bool) -> Result<()> {
    let tok = Tokenizer::new();
    let ids = texts
        .iter()
        .map(|t| tok.tokenize(t, context_length, truncate))
        .collect::<Result<Vec<_>, _>>()?;
    println!("{}", serde_json::json!({ "ids": ids }));
    Ok(())
}

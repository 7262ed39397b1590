//! Implementations of the model-level subcommands (inspect, encode, tokenize).
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use subpt_trainer::clip::config::{ResNetConfig, VisionConfig, VitConfig};
use subpt_trainer::clip::tokenizer::Tokenizer;
use subpt_trainer::clip::{normalize, weights, Clip, Precision};
use tch::{Device, Kind, Tensor};

#[derive(clap::Args)]
pub struct EncodeArgs {
    /// CLIP weights: OpenAI TorchScript archive, torch state dict, safetensors, or a Hugging Face folder.
    #[arg(long)]
    pub weights: PathBuf,
    /// A text to encode (repeatable).
    #[arg(long = "text")]
    pub texts: Vec<String>,
    /// An image file to encode with CLIP's test transform (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Already preprocessed pixels: a safetensors file holding `pixels` [N, 3, R, R] (f32).
    #[arg(long)]
    pub pixels: Option<PathBuf>,
    /// Precision of the towers: fp32, fp16 or bf16 (LayerNorm and BatchNorm stay fp32).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Cut texts longer than the context length instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = subpt_trainer::device::parse_device)]
    pub device: Device,
    /// Output safetensors with `text_features` and `image_features` (L2-normalised, f32).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn inspect(path: &Path, json: bool) -> Result<()> {
    let w = weights::load(path)?;
    let (format, layout) = (w.format, w.layout);
    let clip = Clip::from_tensors(w.tensors, w.activation, Precision::Fp32, Device::Cpu)
        .map_err(|e| e.in_file(path))?;
    let c = &clip.config;
    if json {
        let v = serde_json::json!({
            "weights": path.display().to_string(),
            "format": format,
            "layout": layout,
            "activation": c.activation,
            "embed_dim": c.embed_dim,
            "text": c.text,
            "vision": c.vision,
            "logit_scale": clip.logit_scale,
            "parameters": clip.parameters,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let t = &c.text;
    println!("weights     {}", path.display());
    println!(
        "format      {format:?}, {layout:?} key layout, {:?}",
        c.activation
    );
    println!(
        "text        width {}, {} layers, {} heads, context {}, vocab {}",
        t.width, t.layers, t.heads, t.context_length, t.vocab_size
    );
    match &c.vision {
        VisionConfig::Vit(VitConfig {
            width,
            layers,
            heads,
            patch,
            resolution,
        }) => println!(
            "vision      ViT width {width}, {layers} layers, {heads} heads, patch {patch}, input {resolution}x{resolution}"
        ),
        VisionConfig::ResNet(ResNetConfig {
            width,
            layers,
            heads,
            resolution,
        }) => println!(
            "vision      ModifiedResNet width {width}, blocks {layers:?}, attention-pool heads {heads}, input {resolution}x{resolution}"
        ),
    }
    println!("embed dim   {}", c.embed_dim);
    println!("logit scale {:.4}", clip.logit_scale);
    println!("parameters  {}", clip.parameters);
    Ok(())
}

fn read_pixels(path: &Path, resolution: i64) -> Result<Tensor> {
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("{}: cannot read safetensors", path.display()))?;
    let Some((_, px)) = tensors.into_iter().find(|(k, _)| k == "pixels") else {
        bail!("{}: no tensor named `pixels`", path.display());
    };
    let s = px.size();
    if s.len() != 4 || s[1] != 3 || s[2] != resolution || s[3] != resolution {
        bail!(
            "{}: `pixels` has shape {s:?}, expected [N, 3, {resolution}, {resolution}] for this model",
            path.display()
        );
    }
    Ok(px.to_kind(Kind::Float))
}

pub fn encode(args: &EncodeArgs) -> Result<()> {
    if args.texts.is_empty() && args.images.is_empty() && args.pixels.is_none() {
        bail!("nothing to encode: give --text, --image or --pixels");
    }
    let clip = Clip::load(&args.weights, args.precision, args.device)?;
    let resolution = clip.config.vision.resolution();
    let mut out: Vec<(&str, Tensor)> = Vec::new();
    tch::no_grad(|| -> Result<()> {
        if !args.texts.is_empty() {
            let ids = clip.tokenize(&Tokenizer::new(), &args.texts, args.truncate)?;
            out.push(("text_features", normalize(&clip.encode_text(&ids))));
        }
        let mut pixels = Vec::new();
        if let Some(p) = &args.pixels {
            pixels.push(read_pixels(p, resolution)?);
        }
        if !args.images.is_empty() {
            pixels.push(preprocess_images(&args.images, resolution)?);
        }
        if !pixels.is_empty() {
            let px = Tensor::cat(&pixels, 0);
            out.push(("image_features", normalize(&clip.encode_image(&px))));
        }
        Ok(())
    })?;
    let out: Vec<(&str, Tensor)> = out
        .into_iter()
        .map(|(k, t)| (k, t.to_device(Device::Cpu)))
        .collect();
    subpt_trainer::io::with_atomic_path(&args.out, |tmp| -> Result<()> {
        Tensor::write_safetensors(&out, tmp)
            .with_context(|| format!("cannot write {}", args.out.display()))
    })?;
    if let (Some((_, t)), Some((_, i))) = (
        out.iter().find(|(k, _)| *k == "text_features"),
        out.iter().find(|(k, _)| *k == "image_features"),
    ) {
        print_scores(&args.texts, i, t, clip.logit_scale);
    }
    Ok(())
}

/// Zero-shot probabilities of each image over the given texts, as CLIP's classifier computes them.
fn print_scores(texts: &[String], img: &Tensor, txt: &Tensor, scale: f64) {
    let probs = (img.matmul(&txt.tr()) * scale).softmax(-1, Kind::Float);
    let n = probs.size()[0];
    for i in 0..n {
        let row = probs.get(i);
        let best = row.argmax(0, false).int64_value(&[]) as usize;
        let cells: Vec<String> = (0..texts.len())
            .map(|j| format!("{:.3}", row.double_value(&[j as i64])))
            .collect();
        println!("image {i}: {}  -> {:?}", cells.join(" "), texts[best]);
    }
}

/// CLIP's test transform (bicubic shorter-side resize, centre crop, normalise) at the model's
/// input resolution.
fn preprocess_images(images: &[PathBuf], resolution: i64) -> Result<Tensor> {
    use subpt_trainer::data::{image::load_rgb, transforms::TestTransform};
    let t = TestTransform::new(resolution as usize)?;
    let mut data = Vec::new();
    for p in images {
        data.extend(t.apply(&load_rgb(p)?));
    }
    let n = images.len() as i64;
    Ok(Tensor::from_slice(&data).view([n, 3, resolution, resolution]))
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

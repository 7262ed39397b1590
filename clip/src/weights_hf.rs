//! Hugging Face `CLIPModel` keys -> OpenAI keys. q/k/v projections are packed into one
//! `in_proj` (rows q, k, v, as `nn.MultiheadAttention` stores them) and the bias-free projection
//! Linears are transposed into OpenAI's `x @ P` matrices.
use std::collections::BTreeMap;
use tch::Tensor;

fn block_renames() -> [(&'static str, &'static str); 8] {
    [
        ("layer_norm1.weight", "ln_1.weight"),
        ("layer_norm1.bias", "ln_1.bias"),
        ("layer_norm2.weight", "ln_2.weight"),
        ("layer_norm2.bias", "ln_2.bias"),
        ("mlp.fc1.weight", "mlp.c_fc.weight"),
        ("mlp.fc1.bias", "mlp.c_fc.bias"),
        ("mlp.fc2.weight", "mlp.c_proj.weight"),
        ("mlp.fc2.bias", "mlp.c_proj.bias"),
    ]
}

pub fn convert(raw: Vec<(String, Tensor)>, root: &str) -> Result<BTreeMap<String, Tensor>, String> {
    let mut src: BTreeMap<String, Tensor> = raw
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix(root).map(|k| (k.to_string(), t)))
        .collect();
    let mut out = BTreeMap::new();
    let take = |src: &mut BTreeMap<String, Tensor>, k: &str| {
        src.remove(k)
            .ok_or_else(|| format!("missing tensor `{root}{k}` (Hugging Face CLIP layout)"))
    };
    let simple = [
        (
            "text_model.embeddings.token_embedding.weight",
            "token_embedding.weight",
        ),
        (
            "text_model.embeddings.position_embedding.weight",
            "positional_embedding",
        ),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
        ("logit_scale", "logit_scale"),
    ];
    for (from, to) in simple {
        out.insert(to.to_string(), take(&mut src, from)?);
    }
    out.insert(
        "text_projection".into(),
        take(&mut src, "text_projection.weight")?.tr().contiguous(),
    );
    convert_encoder(
        &mut src,
        &mut out,
        "text_model.encoder.layers",
        "transformer.resblocks",
    )?;
    if src.contains_key("vision_model.embeddings.patch_embedding.weight") {
        let vision = [
            (
                "vision_model.embeddings.class_embedding",
                "visual.class_embedding",
            ),
            (
                "vision_model.embeddings.patch_embedding.weight",
                "visual.conv1.weight",
            ),
            (
                "vision_model.embeddings.position_embedding.weight",
                "visual.positional_embedding",
            ),
            ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
            ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
            (
                "vision_model.post_layernorm.weight",
                "visual.ln_post.weight",
            ),
            ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
        ];
        for (from, to) in vision {
            out.insert(to.to_string(), take(&mut src, from)?);
        }
        out.insert(
            "visual.proj".into(),
            take(&mut src, "visual_projection.weight")?
                .tr()
                .contiguous(),
        );
        convert_encoder(
            &mut src,
            &mut out,
            "vision_model.encoder.layers",
            "visual.transformer.resblocks",
        )?;
    }
    Ok(out)
}

fn convert_encoder(
    src: &mut BTreeMap<String, Tensor>,
    out: &mut BTreeMap<String, Tensor>,
    from: &str,
    to: &str,
) -> Result<(), String> {
    for i in 0.. {
        let f = format!("{from}.{i}");
        let t = format!("{to}.{i}");
        if !src.contains_key(&format!("{f}.self_attn.q_proj.weight")) {
            break;
        }
        let mut take = |k: String| {
            src.remove(&k)
                .ok_or_else(|| format!("missing tensor `{k}`"))
        };
        for part in ["weight", "bias"] {
            let qkv = ["q", "k", "v"]
                .iter()
                .map(|p| take(format!("{f}.self_attn.{p}_proj.{part}")))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(format!("{t}.attn.in_proj_{part}"), Tensor::cat(&qkv, 0));
            out.insert(
                format!("{t}.attn.out_proj.{part}"),
                take(format!("{f}.self_attn.out_proj.{part}"))?,
            );
        }
        for (a, b) in block_renames() {
            out.insert(format!("{t}.{b}"), take(format!("{f}.{a}"))?);
        }
    }
    Ok(())
}

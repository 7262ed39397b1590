//! Randomly initialised CLIP weights in OpenAI's layout, with CLIP's own initialisation scales.
//! No pretrained CLIP can be downloaded everywhere, so demos and tests build small models here.
use super::config::{ResNetConfig, TextConfig, VisionConfig, VitConfig};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// The architecture of a model to generate.
pub struct Spec {
    pub embed_dim: i64,
    pub text: TextConfig,
    pub vision: VisionConfig,
}

impl Spec {
    /// A small model that runs fast on a laptop CPU: text width 64 x 2 layers, ViT 32px.
    pub fn tiny_vit() -> Self {
        Spec {
            embed_dim: 64,
            text: TextConfig {
                width: 64,
                layers: 2,
                heads: 1,
                context_length: 77,
                vocab_size: 49408,
            },
            vision: VisionConfig::Vit(VitConfig {
                width: 64,
                layers: 2,
                heads: 1,
                patch: 8,
                resolution: 32,
            }),
        }
    }

    /// The ModifiedResNet counterpart of [`Spec::tiny_vit`] (64px input).
    pub fn tiny_resnet() -> Self {
        Spec {
            vision: VisionConfig::ResNet(ResNetConfig {
                width: 16,
                layers: [1, 1, 1, 1],
                heads: 8,
                resolution: 64,
            }),
            ..Self::tiny_vit()
        }
    }
}

struct Gen {
    out: BTreeMap<String, Tensor>,
}

impl Gen {
    fn normal(&mut self, key: &str, shape: &[i64], std: f64) {
        let t = Tensor::randn(shape, (Kind::Float, Device::Cpu)) * std;
        self.out.insert(key.to_string(), t);
    }
    fn fill(&mut self, key: &str, shape: &[i64], v: f64) {
        let t = Tensor::full(shape, v, (Kind::Float, Device::Cpu));
        self.out.insert(key.to_string(), t);
    }
    fn linear(&mut self, prefix: &str, inp: i64, out: i64, std: f64) {
        self.normal(&format!("{prefix}.weight"), &[out, inp], std);
        self.fill(&format!("{prefix}.bias"), &[out], 0.0);
    }
    fn layer_norm(&mut self, prefix: &str, w: i64) {
        self.fill(&format!("{prefix}.weight"), &[w], 1.0);
        self.fill(&format!("{prefix}.bias"), &[w], 0.0);
    }
    fn batch_norm(&mut self, prefix: &str, c: i64, gamma: f64) {
        self.fill(&format!("{prefix}.weight"), &[c], gamma);
        self.fill(&format!("{prefix}.bias"), &[c], 0.0);
        self.fill(&format!("{prefix}.running_mean"), &[c], 0.0);
        self.fill(&format!("{prefix}.running_var"), &[c], 1.0);
    }
    fn conv(&mut self, key: &str, cout: i64, cin: i64, k: i64) {
        self.normal(key, &[cout, cin, k, k], (2.0 / (cin * k * k) as f64).sqrt());
    }
    fn transformer(&mut self, prefix: &str, width: i64, layers: i64) {
        let w = width as f64;
        let attn_std = w.powf(-0.5);
        let proj_std = attn_std * ((2 * layers) as f64).powf(-0.5);
        let fc_std = (2.0 * w).powf(-0.5);
        for i in 0..layers {
            let b = format!("{prefix}.resblocks.{i}");
            self.layer_norm(&format!("{b}.ln_1"), width);
            self.layer_norm(&format!("{b}.ln_2"), width);
            self.normal(
                &format!("{b}.attn.in_proj_weight"),
                &[3 * width, width],
                attn_std,
            );
            self.fill(&format!("{b}.attn.in_proj_bias"), &[3 * width], 0.0);
            self.linear(&format!("{b}.attn.out_proj"), width, width, proj_std);
            self.linear(&format!("{b}.mlp.c_fc"), width, 4 * width, fc_std);
            self.linear(&format!("{b}.mlp.c_proj"), 4 * width, width, proj_std);
        }
    }
}

/// Generates the weights of `spec` with the given seed.
pub fn generate(spec: &Spec, seed: i64) -> BTreeMap<String, Tensor> {
    tch::manual_seed(seed);
    let mut g = Gen {
        out: BTreeMap::new(),
    };
    let t = &spec.text;
    g.normal("token_embedding.weight", &[t.vocab_size, t.width], 0.02);
    g.normal("positional_embedding", &[t.context_length, t.width], 0.01);
    g.transformer("transformer", t.width, t.layers);
    g.layer_norm("ln_final", t.width);
    g.normal(
        "text_projection",
        &[t.width, spec.embed_dim],
        (t.width as f64).powf(-0.5),
    );
    g.fill("logit_scale", &[], (1.0f64 / 0.07).ln());
    match spec.vision {
        VisionConfig::Vit(VitConfig {
            width,
            layers,
            patch,
            resolution,
            ..
        }) => {
            let scale = (width as f64).powf(-0.5);
            let grid = resolution / patch;
            g.conv("visual.conv1.weight", width, 3, patch);
            g.normal("visual.class_embedding", &[width], scale);
            g.normal(
                "visual.positional_embedding",
                &[grid * grid + 1, width],
                scale,
            );
            g.layer_norm("visual.ln_pre", width);
            g.transformer("visual.transformer", width, layers);
            g.layer_norm("visual.ln_post", width);
            g.normal("visual.proj", &[width, spec.embed_dim], scale);
        }
        VisionConfig::ResNet(ResNetConfig {
            width,
            layers,
            resolution,
            ..
        }) => {
            let half = width / 2;
            for (i, (cin, cout)) in [(3, half), (half, half), (half, width)].iter().enumerate() {
                g.conv(&format!("visual.conv{}.weight", i + 1), *cout, *cin, 3);
                g.batch_norm(&format!("visual.bn{}", i + 1), *cout, 1.0);
            }
            let mut inplanes = width;
            for (stage, &count) in layers.iter().enumerate() {
                let planes = width << stage;
                for j in 0..count {
                    let p = format!("visual.layer{}.{j}", stage + 1);
                    g.conv(&format!("{p}.conv1.weight"), planes, inplanes, 1);
                    g.batch_norm(&format!("{p}.bn1"), planes, 1.0);
                    g.conv(&format!("{p}.conv2.weight"), planes, planes, 3);
                    g.batch_norm(&format!("{p}.bn2"), planes, 1.0);
                    g.conv(&format!("{p}.conv3.weight"), planes * 4, planes, 1);
                    // CLIP zero-initialises the last BN of each block so blocks start as identity.
                    g.batch_norm(&format!("{p}.bn3"), planes * 4, 0.0);
                    if j == 0 && (stage > 0 || inplanes != planes * 4) {
                        g.conv(&format!("{p}.downsample.0.weight"), planes * 4, inplanes, 1);
                        g.batch_norm(&format!("{p}.downsample.1"), planes * 4, 1.0);
                    }
                    inplanes = planes * 4;
                }
            }
            let c = width * 32;
            let s = resolution / 32;
            let std = (c as f64).powf(-0.5);
            g.normal("visual.attnpool.positional_embedding", &[s * s + 1, c], std);
            for n in ["q", "k", "v"] {
                g.linear(&format!("visual.attnpool.{n}_proj"), c, c, std);
            }
            g.linear("visual.attnpool.c_proj", c, spec.embed_dim, std);
        }
    }
    g.out
}

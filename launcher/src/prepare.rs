//! `subpt-bench prepare ...`: datasets, few-shot subsets and small generated models.
use anyhow::{bail, Result};
use std::path::PathBuf;
use subpt_trainer::data::fashion_mnist::{self, Corruption, FashionMnistOptions};
use subpt_trainer::data::fewshot_cache::{self, CacheMode, FewshotSource};
use subpt_trainer::data::fewshot_pickle::DasslPickle;
use subpt_trainer::data::shapes::{self, RuleKey, ShapesOptions};
use subpt_trainer::data::verify::{verify_with, VerifyOptions};
use subpt_trainer::data::{read_dataset, DatasetName};
use tch::Tensor;

#[derive(clap::Subcommand)]
pub enum PrepareCommand {
    /// Draw (or read from Dassl's split_fewshot cache) the few-shot subset of a seed, exactly as
    /// Dassl draws it, and write it as [[relpath, label, classname], ...] per split.
    Fewshot {
        #[arg(long)]
        dataset: DatasetName,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        shots: usize,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Also store the draw in <dataset>/split_fewshot/ as Dassl's .pkl (and JSON), so Dassl
        /// and later runs reuse the same subset.
        #[arg(long)]
        write_cache: bool,
    },
    /// Check a dataset folder: counts per split, class count, missing or unreadable images.
    Verify {
        #[arg(long)]
        dataset: DatasetName,
        #[arg(long)]
        root: PathBuf,
        /// Decode every image in full (slow), not only its header: finds truncated files.
        #[arg(long)]
        full: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert Debian's dataset-fashion-mnist idx files into a CoOp-layout dataset
    /// (<out>/fashion_mnist/images/..., split_fashion_mnist.json), and shifted copies of it
    /// (<out>/fashion_mnist_<corruption>/...). The train file's first 50,000 images are left out
    /// by default: they are what `subpt-bench pretrain` learns from.
    FashionMnist {
        #[arg(long)]
        out: PathBuf,
        /// Folder with the idx files (default: where Debian installs them).
        #[arg(long)]
        source: Option<PathBuf>,
        /// Keep at most this many images per class in each split, test included (small demos
        /// and tests).
        #[arg(long)]
        per_class: Option<usize>,
        /// Images per class moved from the (held-out part of the) train file into val.
        #[arg(long, default_value_t = 100)]
        val_per_class: usize,
        /// Leave out the train file's images before this index (the pretraining corpus).
        #[arg(long, default_value_t = fashion_mnist::PRETRAIN_IMAGES)]
        skip_train: usize,
        /// Also write this shifted copy: dark, contrast, invert, blur, noise or all (repeatable).
        #[arg(long = "corruption")]
        corruptions: Vec<String>,
        /// Seed of the corruptions' random draws (noise).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write only the shifted copies, not the clean dataset.
        #[arg(long)]
        only_corruptions: bool,
        /// Convert again even when a conversion with the same options exists.
        #[arg(long)]
        force: bool,
    },
    /// Draw the shapes world's datasets (32 x 32 RGB PNGs in CoOp's layout, split_shapes.json):
    /// the embedded CLIP's downstream data.
    Shapes {
        #[arg(long)]
        out: PathBuf,
        /// Only these datasets (default: every shapes dataset).
        #[arg(long = "dataset")]
        datasets: Vec<DatasetName>,
        #[arg(long, default_value_t = ShapesOptions::default().train_per_class)]
        train_per_class: usize,
        #[arg(long, default_value_t = ShapesOptions::default().val_per_class)]
        val_per_class: usize,
        #[arg(long, default_value_t = ShapesOptions::default().test_per_class)]
        test_per_class: usize,
        #[arg(long, default_value_t = ShapesOptions::default().seed)]
        seed: u64,
        /// Key a ruled dataset's base-side patterns on another attribute: shape (its own),
        /// colour, colour-plus-shape or shape-colour-parity. Draw it under its own --out: the
        /// class names are the same, the pixels are not.
        #[arg(long)]
        rule_key: Option<RuleKey>,
        #[arg(long)]
        force: bool,
    },
    /// Write a randomly initialised small CLIP (OpenAI layout, safetensors) for demos and tests.
    /// It is not a pretrained model: its features carry no meaning.
    TinyClip {
        /// Image tower: vit (32px input) or resnet (64px input).
        #[arg(long, default_value = "vit")]
        vision: String,
        #[arg(long, default_value_t = 0)]
        seed: i64,
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: PrepareCommand) -> Result<()> {
    match cmd {
        PrepareCommand::Fewshot {
            dataset,
            root,
            shots,
            seed,
            out,
            write_cache,
        } => {
            let codec = DasslPickle;
            let (subset, source) = if write_cache {
                let splits = read_dataset(dataset, &root)?;
                let r = fewshot_cache::load_or_draw_fewshot(
                    dataset,
                    &root,
                    &splits,
                    shots,
                    seed,
                    CacheMode::ReadWrite,
                    Some(&codec),
                )?;
                subpt_trainer::data::fewshot::write_subset_json(&r.0, &out)?;
                r
            } else {
                fewshot_cache::prepare_fewshot(dataset, &root, shots, seed, &out, Some(&codec))?
            };
            let from = match source {
                FewshotSource::DasslPickle(p) => format!("Dassl cache {}", p.display()),
                FewshotSource::Json(p) => format!("cache {}", p.display()),
                FewshotSource::Drawn => format!("drawn with seed {seed}"),
            };
            eprintln!(
                "{dataset} {shots}-shot: {} train, {} val items ({from}) -> {}",
                subset.train.len(),
                subset.val.as_ref().map_or(0, |v| v.len()),
                out.display()
            );
            Ok(())
        }
        PrepareCommand::Verify {
            dataset,
            root,
            full,
            json,
        } => {
            let report = verify_with(dataset, &root, VerifyOptions { full_decode: full })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.ok() {
                bail!(
                    "{dataset} under {} has problems (see above)",
                    root.display()
                );
            }
            Ok(())
        }
        PrepareCommand::FashionMnist {
            out,
            source,
            per_class,
            val_per_class,
            skip_train,
            corruptions,
            seed,
            only_corruptions,
            force,
        } => {
            let Some(source) = source.or_else(fashion_mnist::find_source) else {
                bail!("no Fashion-MNIST idx files found: install Debian's dataset-fashion-mnist or pass --source");
            };
            let mut variants: Vec<Option<Corruption>> = Vec::new();
            if !only_corruptions {
                variants.push(None);
            }
            for c in &corruptions {
                if c == "all" {
                    variants.extend(Corruption::ALL.map(Some));
                } else {
                    variants.push(Some(c.parse().map_err(anyhow::Error::msg)?));
                }
            }
            variants.dedup();
            if variants.is_empty() {
                bail!("--only-corruptions needs at least one --corruption");
            }
            // The test file holds 1,000 images per class: a cap at or above that cuts nothing.
            if let Some(n) = per_class.filter(|&n| n < 1000) {
                tracing::warn!(
                    "--per-class {n}: every split is capped at {n} images per class, the test \
                     split included ({} test images instead of 10000): accuracies are not \
                     comparable with the full test set",
                    n * 10
                );
            }
            for corruption in variants {
                let opts = FashionMnistOptions {
                    val_per_class,
                    max_per_class: per_class,
                    skip_train,
                    corruption,
                    seed,
                };
                let converted = if force {
                    fashion_mnist::convert(&source, &out, &opts)?;
                    true
                } else {
                    fashion_mnist::ensure(&source, &out, &opts)?
                };
                if !converted {
                    eprintln!(
                        "{}: up to date under {} (--force converts again)",
                        opts.dataset(),
                        out.display()
                    );
                    continue;
                }
                let splits = read_dataset(opts.dataset(), &out)?;
                eprintln!(
                    "{}: {} train / {} val / {} test images, {} classes under {}",
                    opts.dataset(),
                    splits.train.len(),
                    splits.val.len(),
                    splits.test.len(),
                    splits.classnames.len(),
                    out.display()
                );
            }
            Ok(())
        }
        PrepareCommand::Shapes {
            out,
            datasets,
            train_per_class,
            val_per_class,
            test_per_class,
            seed,
            rule_key,
            force,
        } => {
            let opts = ShapesOptions {
                train_per_class,
                val_per_class,
                test_per_class,
                seed,
                rule_key,
            };
            // With a rule key, every dataset means every ruled one.
            let all: Vec<DatasetName> = DatasetName::ALL
                .into_iter()
                .filter(|d| d.is_shapes())
                .filter(|&d| {
                    rule_key.is_none() || shapes::world_dataset(d).is_some_and(|w| w.rule.is_some())
                })
                .collect();
            let chosen = if datasets.is_empty() { all } else { datasets };
            for d in chosen {
                if !d.is_shapes() {
                    bail!("{d} is not a shapes dataset");
                }
                let drew = if force {
                    shapes::write(d, &out, &opts)?;
                    true
                } else {
                    shapes::ensure(d, &out, &opts)?
                };
                if !drew {
                    eprintln!(
                        "{d}: up to date under {} (--force draws again)",
                        out.display()
                    );
                    continue;
                }
                let splits = read_dataset(d, &out)?;
                eprintln!(
                    "{d}: {} train / {} val / {} test images, {} classes under {}",
                    splits.train.len(),
                    splits.val.len(),
                    splits.test.len(),
                    splits.classnames.len(),
                    out.display()
                );
            }
            Ok(())
        }
        PrepareCommand::TinyClip { vision, seed, out } => {
            use subpt_trainer::clip::random_init::{generate, Spec};
            let spec = match vision.as_str() {
                "vit" => Spec::tiny_vit(),
                "resnet" => Spec::tiny_resnet(),
                other => bail!("--vision {other}: expected vit or resnet"),
            };
            let tensors = generate(&spec, seed);
            let named: Vec<(&str, &Tensor)> =
                tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
            subpt_trainer::io::with_atomic_path(&out, |tmp| -> Result<()> {
                Tensor::write_safetensors(&named, tmp)?;
                Ok(())
            })?;
            eprintln!(
                "wrote a random-init tiny CLIP ({vision}) to {}",
                out.display()
            );
            Ok(())
        }
    }
}

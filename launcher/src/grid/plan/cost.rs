//! Relative cost of a cell, for scheduling and for the dry-run total.
//!
//! The unit is one prompt through the text encoder. Image features are frozen and cached,
//! so a CoOp step costs about one forward + backward (≈ 3 forwards) of the text encoder
//! over the prompts of every training class:
//!
//! - train items   = shots × classes trained on (all classes, or the base half)
//! - steps / epoch = ⌈train items / batch size⌉ (CoCoOp's batch of 1 makes this large)
//! - training      = 3 × epochs × steps × classes, plus the early stage (t_early epochs)
//!   when a SubPT cell has no trajectory to reuse; zero-shot CLIP trains nothing
//! - evaluation    = one pass over the prompts of the classes evaluated
//!
//! A feature cell encodes each evaluated test subset once: an image-tower pass costs about as
//! much as `IMAGE_PASS` text prompts (ViT-B/16: 197 tokens of width 768 against 77 of 512).
//!
//! Class counts and test-set sizes are the real datasets' (`DatasetInfo::num_classes`,
//! `num_test`), so fixtures look dearer than they are; only ratios between cells matter.
use crate::grid::CellKind;
use subpt_trainer::data::subsample::base_new_sizes;
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::spec::RunSpec;

const IMAGE_PASS: f64 = 7.5;

pub fn estimate_cost(spec: &RunSpec, kind: &CellKind) -> f64 {
    let classes = spec.dataset.info().num_classes;
    let (base, new) = base_new_sizes(classes);
    let of = |s: SubsampleClasses| match s {
        SubsampleClasses::Base => base,
        SubsampleClasses::New => new,
        SubsampleClasses::All => classes,
    };
    let trained = of(spec.subsample);
    let evaluated: usize = spec.eval_subsets.iter().map(|&s| of(s)).sum();
    let eval = evaluated as f64;
    if *kind == CellKind::Features {
        // Each subset's images are encoded under their own key: "all" once, "base" and "new"
        // a class half each (taken as half the images).
        let images = spec.dataset.info().num_test as f64;
        return IMAGE_PASS * images * eval / classes as f64 + eval;
    }
    if matches!(kind, CellKind::Evaluate { .. }) || !spec.method.learns() {
        return eval;
    }
    let items = spec.shots * trained;
    let steps = items.div_ceil(spec.batch_size.max(1));
    let mut epochs = spec.epochs;
    if let Some(sub) = &spec.subpt {
        if sub.trajectory.is_none() {
            epochs += sub.early_epochs;
        }
    }
    // A step is a forward and a backward pass through the text tower (about three passes);
    // ProGrad's runs a second backward pass for its KL term.
    let passes = if spec.method.uses_prograd() { 5.0 } else { 3.0 };
    passes * (epochs * steps * trained) as f64 + eval
}

/// Bytes a cell writes to its output directory: the trajectory (θ0 and the context after
/// every epoch, fp32), the final context and its records, for a text width of 512 (CLIP's
/// towers but ViT-L/14's) and 16 context vectors where the spec sets none.
pub fn disk_bytes(spec: &RunSpec, kind: &CellKind) -> u64 {
    const RECORDS: u64 = 64 << 10;
    let learns = spec.method.learns() && !matches!(kind, CellKind::Evaluate { .. });
    if *kind == CellKind::Features || !learns {
        return RECORDS;
    }
    let ctx = (spec.prompt.n_ctx.max(1) * 512 * 4) as u64;
    RECORDS + ctx * (spec.epochs as u64 + 2)
}

/// What a whole grid writes to its output directory ([`disk_bytes`] over its cells).
pub fn disk_estimate(grid: &crate::grid::Grid, done: &[bool]) -> u64 {
    grid.cells
        .iter()
        .zip(done)
        .filter(|(_, d)| !**d)
        .map(|(c, _)| disk_bytes(&c.spec, &c.kind))
        .sum()
}

/// Free bytes on the file system holding `dir` (or its nearest existing parent).
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = dir.ancestors().find(|d| d.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Seconds per cost unit, by kind of cell: training and evaluation cells (prompt passes) and
/// feature cells (mostly image passes), and where the rates came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub train: f64,
    pub features: f64,
    pub source: String,
}

/// Rates measured on the results already in `output_dir` (their recorded wall time against
/// their cost estimate), when there are any of both kinds.
pub fn rates_from_results(output_dir: &std::path::Path) -> Option<Rates> {
    use subpt_trainer::store::{CellDir, FEATURES, RESULT};
    let (mut t_secs, mut t_cost, mut f_secs, mut f_cost, mut n) = (0.0, 0.0, 0.0, 0.0, 0);
    for e in std::fs::read_dir(output_dir).ok()?.flatten() {
        let dir = CellDir::new(e.path());
        if let Some(r) = dir.read_json::<subpt_trainer::engine::result::RunResult>(RESULT) {
            let kind = match r.spec.evaluate_context {
                Some(_) => CellKind::Evaluate {
                    model: String::new(),
                },
                None => CellKind::Train,
            };
            t_secs += r.timings.get("total_s").copied().unwrap_or(0.0);
            t_cost += estimate_cost(&r.spec, &kind);
            n += 1;
        } else if let Some(f) =
            dir.read_json::<subpt_trainer::engine::warm::FeaturesResult>(FEATURES)
        {
            f_secs += f.seconds;
            f_cost += estimate_cost(&f.spec, &CellKind::Features);
        }
    }
    (t_cost > 0.0 && f_cost > 0.0).then(|| Rates {
        train: t_secs / t_cost,
        features: f_secs / f_cost,
        source: format!("calibrated on {n} result(s) in {}", output_dir.display()),
    })
}

/// Rates from a short probe of `weights`: one forward + backward of 10 class prompts and one
/// image-tower pass over 8 images, on this machine with one thread.
pub fn rates_from_probe(weights: &std::path::Path) -> Option<Rates> {
    use subpt_trainer::clip::{tokenizer::Tokenizer, Clip, Precision};
    use subpt_trainer::methods::{
        coop,
        prompt_learner::{PromptConfig, PromptLearner},
    };
    use tch::{Device, Kind, Tensor};
    let clip = Clip::load(weights, Precision::Fp32, Device::Cpu).ok()?;
    let before = tch::get_num_threads();
    tch::set_num_threads(1);
    let names: Vec<String> = (0..10).map(|i| format!("class {i}")).collect();
    let mut l =
        PromptLearner::new(&clip, &Tokenizer::new(), &names, PromptConfig::default()).ok()?;
    l.ctx = l.ctx.set_requires_grad(true);
    let r = clip.config.vision.resolution();
    let pixels = Tensor::randn([8, 3, r, r], (Kind::Float, Device::Cpu));
    let labels = Tensor::arange(8, (Kind::Int64, Device::Cpu));
    let mut best = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let img = tch::no_grad(|| clip.encode_image(&pixels));
        let image = t.elapsed().as_secs_f64() / 8.0;
        let t = std::time::Instant::now();
        let (loss, _) = coop::loss(&clip, &l, &img, &labels);
        let _ = Tensor::run_backward(&[&loss], &[&l.ctx], false, false);
        let prompt = t.elapsed().as_secs_f64() / 30.0;
        best = (best.0.min(image), best.1.min(prompt));
    }
    tch::set_num_threads(before);
    let (image, prompt) = best;
    Some(Rates {
        train: prompt,
        // A feature cell's cost counts an image as IMAGE_PASS prompt passes.
        features: image / IMAGE_PASS,
        source: format!(
            "from a probe of {}: {:.2} ms per prompt pass, {:.2} ms per image",
            weights.display(),
            prompt * 1e3,
            image * 1e3
        ),
    })
}

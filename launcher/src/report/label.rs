//! How runs are named and ordered in tables and plots.
use super::collect::Loaded;
use std::collections::{BTreeMap, BTreeSet};
use subpt_trainer::engine::presets;
use subpt_trainer::engine::spec::{Method, RunSpec, ZERO_SHOT_UNREAD};

/// Methods in the order the papers list them.
pub const METHODS: [Method; 6] = Method::ALL;

/// A main-table cell: dataset, shots, method.
pub type CellKey = (String, usize, MethodKey);

/// A sortable method key: its position in `METHODS`, then a settings suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MethodKey {
    pub order: usize,
    /// Empty for the paper's settings; otherwise the SubPT / NFL settings that differ.
    pub variant: String,
}

impl MethodKey {
    pub fn of(spec: &RunSpec) -> Self {
        let order = METHODS
            .iter()
            .position(|m| *m == spec.method)
            .unwrap_or(METHODS.len());
        MethodKey {
            order,
            variant: variant(spec),
        }
    }

    /// [`MethodKey::of`] with the run's distinguishing settings (see [`distinguish`]).
    pub fn of_run(run: &Loaded) -> Self {
        let mut k = Self::of(&run.result.spec);
        if !run.variant.is_empty() {
            if !k.variant.is_empty() {
                k.variant.push(' ');
            }
            k.variant.push_str(&run.variant);
        }
        k
    }

    pub fn method(&self) -> Option<Method> {
        METHODS.get(self.order).copied()
    }

    /// What tables print: the method, and its settings when they are not the paper's, so
    /// that ablation runs never mix into the main rows.
    pub fn label(&self) -> String {
        let m = self.method().map(|m| m.to_string()).unwrap_or_default();
        if self.variant.is_empty() {
            m
        } else {
            format!("{m} [{}]", self.variant)
        }
    }
}

fn variant(spec: &RunSpec) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &spec.subpt {
        let paper = presets::subpt(spec.protocol, spec.shots);
        if (s.rank, s.early_epochs) != (paper.rank, paper.early_epochs) {
            parts.push(format!("r={} t={}", s.rank, s.early_epochs));
        }
    }
    if let Some(n) = &spec.nfl {
        if n.lambda != presets::NFL_LAMBDA {
            parts.push(format!("λ={}", n.lambda));
        }
    }
    parts.join(" ")
}

/// Spec fields that place a run in a table (dataset, shots, method, class subsets), that
/// repeat it (seed), that do not change its numbers (the cache, the files a trained model is
/// read from: their contents are in the identity) or that the paper's variant already names.
const PLACED: [&str; 12] = [
    "dataset",
    "shots",
    "method",
    "subsample",
    "eval_subsets",
    "seed",
    "cache_dir",
    "evaluate_context",
    "subpt.trajectory",
    "subpt.rank",
    "subpt.early_epochs",
    "nfl.lambda",
];

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = match prefix {
                    "" => k.clone(),
                    p => format!("{p}.{k}"),
                };
                flatten(&key, x, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.into(), s.clone());
        }
        x => {
            out.insert(prefix.into(), x.to_string());
        }
    }
}

/// A run (or cell) as [`variants`] sees it: its spec and, when known, its weights' digest.
pub type Described<'a> = (&'a RunSpec, Option<&'a str>);

/// The settings of a run that may tell it apart from another run in the same table cell.
fn settings(spec: &RunSpec, weights: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    flatten(
        "",
        &serde_json::to_value(spec).unwrap_or_default(),
        &mut out,
    );
    out.retain(|k, _| {
        !PLACED
            .iter()
            .any(|p| k == p || k.starts_with(&format!("{p}.")))
    });
    out.insert("weights".into(), weights.to_string());
    out
}

fn weights_key((spec, digest): &Described) -> (String, String) {
    (
        spec.weights.display().to_string(),
        digest.unwrap_or_default().to_string(),
    )
}

/// Names for the weights files: the file stem, with the first 8 hex digits of the content
/// digest where one stem stands for several files or contents.
fn weights_labels(runs: &[Described]) -> BTreeMap<(String, String), String> {
    let keys: BTreeSet<(String, String)> = runs.iter().map(weights_key).collect();
    let stem = |p: &str| {
        std::path::Path::new(p)
            .file_stem()
            .map_or(p.to_string(), |s| s.to_string_lossy().into_owned())
    };
    let mut per_stem: BTreeMap<String, usize> = BTreeMap::new();
    for (p, _) in &keys {
        *per_stem.entry(stem(p)).or_default() += 1;
    }
    keys.into_iter()
        .map(|(p, d)| {
            let s = stem(&p);
            let label = match per_stem[&s] > 1 {
                true if !d.is_empty() => format!("{s}@{}", &d[..8.min(d.len())]),
                true => p.clone(),
                false => s,
            };
            ((p, d), label)
        })
        .collect()
}

/// For each run: the settings that differ between runs landing in the same table cell (same
/// dataset, shots, method and class subsets), as space-separated `field=value`. Every run is
/// labelled with every field that differs anywhere, so a variant reads the same in each
/// dataset's rows and in the averages over datasets.
pub fn variants(runs: &[Described]) -> Vec<String> {
    let weights = weights_labels(runs);
    let all: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| settings(r.0, &weights[&weights_key(r)]))
        .collect();
    let mut groups: BTreeMap<_, Vec<usize>> = BTreeMap::new();
    for (i, (s, _)) in runs.iter().enumerate() {
        let key = (
            s.dataset,
            s.shots,
            MethodKey::of(s),
            s.subsample,
            s.eval_subsets.clone(),
        );
        groups.entry(key).or_default().push(i);
    }
    let mut differing = BTreeSet::new();
    for members in groups.values() {
        let fields: BTreeSet<&String> = members.iter().flat_map(|&i| all[i].keys()).collect();
        for f in fields {
            let values: BTreeSet<Option<&String>> =
                members.iter().map(|&i| all[i].get(f)).collect();
            if values.len() > 1 {
                differing.insert(f.clone());
            }
        }
    }
    all.iter()
        .zip(runs)
        .map(|(s, (spec, _))| {
            // Zero-shot CLIP reads no training setting: a learning rate axis is not its label.
            let read = |f: &&String| {
                spec.method.learns()
                    || !ZERO_SHOT_UNREAD
                        .iter()
                        .any(|u| *f == u || f.starts_with(&format!("{u}.")))
            };
            differing
                .iter()
                .filter(read)
                .map(|f| format!("{f}={}", s.get(f).map_or("-", String::as_str)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Sets each run's `variant` (see [`variants`]).
pub fn distinguish(runs: &mut [Loaded]) {
    let described: Vec<Described> = runs
        .iter()
        .map(|r| {
            let digest = r.result.identity.as_ref().map(|i| i.weights.as_str());
            (&r.result.spec, digest)
        })
        .collect();
    let v = variants(&described);
    for (r, v) in runs.iter_mut().zip(v) {
        r.variant = v;
        // Numbers of other code are not today's: they say so wherever they are shown.
        let current = subpt_trainer::engine::inputs::NUMERICS_VERSION;
        let numerics = r.result.identity.as_ref().map(|i| i.numerics);
        if let Some(n) = numerics.filter(|&n| n != current) {
            let tag = format!("numerics v{n}");
            r.variant = [r.variant.as_str(), tag.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(method: Method, shots: usize) -> RunSpec {
        presets::preset(
            presets::Protocol::FewShot,
            subpt_trainer::data::DatasetName::Dtd,
            PathBuf::new(),
            method,
            shots,
            1,
            PathBuf::new(),
        )
    }

    #[test]
    fn only_settings_off_the_paper_are_labelled() {
        // 1 shot: the paper uses r = 5, t_early = 10.
        assert_eq!(MethodKey::of(&spec(Method::CoopSub, 1)).label(), "coop_sub");
        let mut s = spec(Method::CoopSubNfl, 1);
        s.subpt.as_mut().unwrap().rank = 10;
        s.nfl.as_mut().unwrap().lambda = 2.0;
        assert_eq!(MethodKey::of(&s).label(), "coop_sub_nfl [r=10 t=10 λ=2]");
        // Base-to-novel uses (r, t_early) = (10, 30) whatever the shots.
        let mut b = spec(Method::CoopSub, 1);
        b.subsample = subpt_trainer::data::SubsampleClasses::Base;
        b.protocol = presets::Protocol::BaseToNovel;
        let p = b.subpt.as_mut().unwrap();
        (p.rank, p.early_epochs) = (10, 30);
        assert_eq!(MethodKey::of(&b).label(), "coop_sub");
        assert!(MethodKey::of(&spec(Method::Zsclip, 4)) < MethodKey::of(&spec(Method::Coop, 4)));
    }
}

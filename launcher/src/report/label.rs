//! How runs are named and ordered in tables and plots.
use super::collect::Loaded;
use super::table::Cell;
use std::collections::{BTreeMap, BTreeSet};
use subpt_trainer::data::SubsampleClasses;
use subpt_trainer::engine::presets;
use subpt_trainer::engine::spec::{Method, RunSpec, ZERO_SHOT_UNREAD};

/// Methods in the order the papers list them.
pub const METHODS: [Method; Method::ALL.len()] = Method::ALL;

/// A main-table cell: dataset, shots, method.
pub type CellKey = (String, usize, MethodKey);

/// The datasets each (shots, method) of a table has a cell on: what its average row is over.
pub fn datasets_of<V>(
    cells: &BTreeMap<CellKey, V>,
) -> BTreeMap<(usize, MethodKey), BTreeSet<String>> {
    let mut out: BTreeMap<(usize, MethodKey), BTreeSet<String>> = BTreeMap::new();
    for (d, shots, m) in cells.keys() {
        out.entry((*shots, m.clone()))
            .or_default()
            .insert(d.clone());
    }
    out
}

/// A sortable method key: its position in `METHODS`, then its settings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MethodKey {
    pub order: usize,
    /// The method's own settings where they are not its paper's (`r=5 t=30`, `λ=0.5`, `W=4`):
    /// an ablation, which tables never rank beside the paper's settings. Empty otherwise.
    pub ablation: String,
    /// What else tells the run apart from others in its table cell (`lr=0.01 weights=a`,
    /// see [`distinguish`]): runs with the same value are comparable with each other.
    pub runs: String,
}

impl MethodKey {
    pub fn of(spec: &RunSpec) -> Self {
        let order = METHODS
            .iter()
            .position(|m| *m == spec.method)
            .unwrap_or(METHODS.len());
        MethodKey {
            order,
            ablation: variant(spec),
            runs: String::new(),
        }
    }

    /// [`MethodKey::of`] with the run's distinguishing settings (see [`distinguish`]).
    pub fn of_run(run: &Loaded) -> Self {
        MethodKey {
            runs: run.variant.clone(),
            ..Self::of(&run.result.spec)
        }
    }

    pub fn method(&self) -> Option<Method> {
        METHODS.get(self.order).copied()
    }

    /// Settings off the paper's.
    pub fn is_ablation(&self) -> bool {
        !self.ablation.is_empty()
    }

    /// Every setting that tells this key apart from the method at its paper's settings.
    fn suffix(&self) -> String {
        [self.ablation.as_str(), self.runs.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn with_suffix(&self, name: &str) -> String {
        match self.suffix() {
            s if s.is_empty() => name.to_string(),
            s => format!("{name} [{s}]"),
        }
    }

    /// What tables print: the method, and its settings when they are not the paper's, so
    /// that ablation runs never mix into the main rows.
    pub fn label(&self) -> String {
        self.with_suffix(self.method().map_or("", |m| m.name()))
    }

    /// [`MethodKey::label`] with the method named as its paper writes it (`SubPT+NFL`).
    pub fn paper_label(&self) -> String {
        self.with_suffix(self.method().map_or("", |m| m.paper_name()))
    }

    /// The method as a table cell: its label in CSV and Markdown, its paper label in LaTeX.
    pub fn cell(&self) -> Cell {
        Cell::Name {
            plain: self.label(),
            paper: self.paper_label(),
        }
    }
}

/// The method's settings that differ from its paper's, as papers name them.
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
    if let Some(k) = &spec.kg {
        if k.weight != presets::KGCOOP_WEIGHT {
            parts.push(format!("W={}", k.weight));
        }
    }
    if let Some(p) = &spec.prograd {
        // ProGrad's paper softens λ for some datasets and shot counts: compare with the
        // setting of this run's own cell.
        let paper = presets::prograd(spec.protocol, spec.dataset, spec.shots);
        if p.lambda != paper.lambda {
            parts.push(format!("λ={}", p.lambda));
        }
        if p.temperature != paper.temperature {
            parts.push(format!("T={}", p.temperature));
        }
    }
    parts.join(" ")
}

/// Spec fields that place a run in a table (dataset, shots, method, class subsets, protocol),
/// that repeat it (seed), that do not change its numbers (the cache, the files a trained model
/// is read from: their contents are in the identity) or that the method's ablation suffix
/// already names (see `variant`).
const PLACED: [&str; 16] = [
    "dataset",
    "shots",
    "method",
    "subsample",
    "eval_subsets",
    "protocol",
    "seed",
    "cache_dir",
    "evaluate_context",
    "subpt.trajectory",
    "subpt.rank",
    "subpt.early_epochs",
    "nfl.lambda",
    "kg.weight",
    "prograd.lambda",
    "prograd.temperature",
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
/// dataset, shots, method, class subsets and base-to-novel protocol), as space-separated `field=value`. Every run is
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
        // Base-to-novel tables are one per protocol; zero-shot CLIP's one run serves them all
        // (its recorded protocol is whichever grid wrote it first).
        let protocol = (s.subsample != SubsampleClasses::All && s.method.learns())
            .then_some(s.protocol.name());
        let key = (
            s.dataset,
            s.shots,
            MethodKey::of(s),
            s.subsample,
            s.eval_subsets.clone(),
            protocol,
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
            // Nor does a method read the settings of a term it does not have (CoOp of
            // KgCoOp's template): its spec has no such section.
            let read = |f: &&String| {
                let section = f.split('.').next().unwrap_or(f);
                let has_section = s.get(section).is_none_or(|v| v != "null")
                    && s.keys()
                        .any(|k| k == section || k.starts_with(&format!("{section}.")));
                (spec.method.learns()
                    || !ZERO_SHOT_UNREAD
                        .iter()
                        .any(|u| *f == u || f.starts_with(&format!("{u}."))))
                    && (has_section || !f.contains('.'))
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
        assert_eq!(MethodKey::of(&s).paper_label(), "SubPT+NFL [r=10 t=10 λ=2]");
    }

    #[test]
    fn kgcoop_and_prograd_settings_off_their_papers_are_ablations() {
        let kg = spec(Method::KgcoopSub, 4);
        assert_eq!(MethodKey::of(&kg).label(), "kgcoop_sub");
        let mut w = kg.clone();
        w.kg.as_mut().unwrap().weight = 2.0;
        let key = MethodKey::of(&w);
        assert!(key.is_ablation());
        assert_eq!(key.paper_label(), "KgCoOp+SubPT [W=2]");
        // ProGrad's λ is 0.8 at 16 shots on DTD and 1 at 4 shots: each is the paper's there.
        let pg16 = spec(Method::Prograd, 16);
        assert_eq!(pg16.prograd.as_ref().unwrap().lambda, 0.8);
        assert_eq!(MethodKey::of(&pg16).label(), "prograd");
        let mut pg4 = spec(Method::Prograd, 4);
        assert_eq!(MethodKey::of(&pg4).label(), "prograd");
        pg4.prograd.as_mut().unwrap().lambda = 0.8;
        assert_eq!(MethodKey::of(&pg4).label(), "prograd [λ=0.8]");
        pg4.prograd.as_mut().unwrap().temperature = 2.0;
        assert_eq!(MethodKey::of(&pg4).label(), "prograd [λ=0.8 T=2]");
    }

    /// The new terms' fields: their ablation settings are named once (not again as
    /// `kg.weight=`), and a difference the suffix does not name (a template) tells runs apart.
    #[test]
    fn runs_differing_in_kg_or_prograd_fields_are_told_apart() {
        let a = spec(Method::Kgcoop, 4);
        let mut w = a.clone();
        w.kg.as_mut().unwrap().weight = 4.0;
        let mut t = a.clone();
        t.kg.as_mut().unwrap().template = "a blurry photo of a {}.".into();
        let p = spec(Method::Prograd, 4);
        let mut p2 = p.clone();
        p2.prograd.as_mut().unwrap().template = "a photo of {}.".into();
        let zs = spec(Method::Zsclip, 4).reduced_to_what_it_reads();
        let specs = [&a, &w, &t, &p, &p2, &zs];
        let described: Vec<Described> = specs.iter().map(|s| (*s, None)).collect();
        let v = variants(&described);
        assert_eq!(v[0], "kg.template=a photo of a {}, a type of texture.");
        assert_eq!(v[1], v[0], "W is the ablation suffix's, not a field label");
        assert_eq!(v[2], "kg.template=a blurry photo of a {}.");
        assert_eq!(v[3], "prograd.template=a texture of {}.");
        assert_eq!(v[4], "prograd.template=a photo of {}.");
        assert_eq!(v[5], "", "zero-shot CLIP reads neither term");
        // Runs at the paper's settings that differ in nothing carry no label.
        let same = [(&a, None), (&p, None)];
        assert_eq!(variants(&same), vec![String::new(), String::new()]);
    }

    /// Base-to-novel runs of two protocols are in two tables: what differs between them (the
    /// schedule) is no label, and neither is the protocol.
    #[test]
    fn base_to_novel_protocols_do_not_label_each_other() {
        let b2n = |protocol| {
            presets::preset(
                protocol,
                subpt_trainer::data::DatasetName::Dtd,
                PathBuf::new(),
                Method::Coop,
                16,
                1,
                PathBuf::new(),
            )
        };
        let subpt = b2n(presets::Protocol::BaseToNovel);
        let cocoop = b2n(presets::Protocol::BaseToNovelCocoop);
        assert_ne!(subpt.epochs, cocoop.epochs);
        let v = variants(&[(&subpt, None), (&cocoop, None)]);
        assert_eq!(v, vec![String::new(), String::new()]);
    }
}

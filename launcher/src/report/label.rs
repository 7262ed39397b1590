//! How runs are named and ordered in tables and plots.
use subpt_trainer::engine::spec::{Method, RunSpec, SubptSpec};

/// Methods in the order the papers list them.
pub const METHODS: [Method; 6] = Method::ALL;

/// Target datasets of domain generalisation (the source is ImageNet).
pub const DG_TARGETS: [&str; 4] = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"];

/// The NFL weight the paper's tables use.
const PAPER_LAMBDA: f64 = 1.0;

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

/// The SubPT (rank, early epochs) the paper uses for this kind of run.
pub fn paper_subpt(spec: &RunSpec) -> (usize, usize) {
    if spec.subsample == "all" {
        let d = SubptSpec::defaults_for_shots(spec.shots);
        (d.rank, d.early_epochs)
    } else {
        // Base-to-novel runs use t_early = 30, r = 10 whatever the shot count.
        (10, 30)
    }
}

fn variant(spec: &RunSpec) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &spec.subpt {
        if (s.rank, s.early_epochs) != paper_subpt(spec) {
            parts.push(format!("r={} t={}", s.rank, s.early_epochs));
        }
    }
    if let Some(n) = &spec.nfl {
        if n.lambda != PAPER_LAMBDA {
            parts.push(format!("λ={}", n.lambda));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec(method: Method, shots: usize) -> RunSpec {
        RunSpec::paper_defaults("d", PathBuf::new(), method, shots, 1, PathBuf::new())
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
        b.subsample = "base".into();
        let p = b.subpt.as_mut().unwrap();
        (p.rank, p.early_epochs) = (10, 30);
        assert_eq!(MethodKey::of(&b).label(), "coop_sub");
        assert!(MethodKey::of(&spec(Method::Zsclip, 4)) < MethodKey::of(&spec(Method::Coop, 4)));
    }
}

//! Settings that cannot make a meaningful result: [`RunSpec::problems`], which grids check at
//! parse time and in `--dry-run`, `train` before it starts, and a cell before it reads data.
use super::spec::RunSpec;

/// A setting that cannot make a meaningful result: the field's dotted path and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: &'static str,
    pub message: String,
}

impl RunSpec {
    /// The settings of this spec that cannot make a meaningful result (a negative learning
    /// rate, no epochs for a method that learns, a subspace wider than its trajectory, ...).
    /// Grids refuse them at parse time and in `--dry-run`, `train` before it starts, and a
    /// cell before it reads any data.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &'static str, message: String| out.push(Problem { key, message });
        let learns = self.trains();
        if self.batch_size == 0 {
            bad("batch_size", "must be at least 1".into());
        }
        if learns {
            if !(self.lr.is_finite() && self.lr > 0.0) {
                bad("lr", format!("{} is not a positive learning rate", self.lr));
            }
            if !(self.warmup_lr.is_finite() && self.warmup_lr >= 0.0) {
                bad(
                    "warmup_lr",
                    format!("{} is not a learning rate", self.warmup_lr),
                );
            }
            if self.epochs == 0 {
                bad(
                    "epochs",
                    format!(
                        "{} learns its context: it needs at least 1 epoch",
                        self.method
                    ),
                );
            }
            if self.shots == 0 {
                bad("shots", "a method that learns needs at least 1 shot".into());
            }
            if self.prompt.ctx_init.is_none() && self.prompt.n_ctx == 0 {
                bad(
                    "prompt.n_ctx",
                    "0 context vectors leave nothing to learn".into(),
                );
            }
            if self
                .prompt
                .ctx_init
                .as_deref()
                .is_some_and(|w| w.trim().is_empty())
            {
                bad(
                    "prompt.ctx_init",
                    "an empty initialisation has no words".into(),
                );
            }
        }
        if let Some(sub) = self
            .subpt
            .as_ref()
            .filter(|_| learns && self.method.uses_subspace())
        {
            if sub.early_epochs < 2 {
                bad(
                    "subpt.early_epochs",
                    format!(
                        "t_early = {}: a trajectory of fewer than 2 contexts spans no subspace",
                        sub.early_epochs
                    ),
                );
            }
            if sub.rank == 0 || sub.rank > sub.early_epochs {
                bad(
                    "subpt.rank",
                    format!(
                        "r = {} must be between 1 and t_early = {} (the trajectory's length)",
                        sub.rank, sub.early_epochs
                    ),
                );
            }
        }
        if let Some(nfl) = self.nfl.as_ref().filter(|_| learns) {
            if !(nfl.lambda.is_finite() && nfl.lambda >= 0.0) {
                bad("nfl.lambda", format!("{} is not a loss weight", nfl.lambda));
            }
        }
        let template = |t: &str| {
            (!t.contains("{}")).then(|| format!("`{t}` has no `{{}}` for the class name"))
        };
        if let Some(kg) = self.kg.as_ref().filter(|_| learns) {
            if !(kg.weight.is_finite() && kg.weight >= 0.0) {
                bad("kg.weight", format!("{} is not a loss weight", kg.weight));
            }
            if let Some(m) = template(&kg.template) {
                bad("kg.template", m);
            }
        }
        if let Some(p) = self.prograd.as_ref().filter(|_| learns) {
            if !(p.lambda.is_finite() && p.lambda >= 0.0) {
                bad("prograd.lambda", format!("{} is not a weight", p.lambda));
            }
            if !(p.temperature.is_finite() && p.temperature > 0.0) {
                bad(
                    "prograd.temperature",
                    format!("{} is not a positive temperature", p.temperature),
                );
            }
            if let Some(m) = template(&p.template) {
                bad("prograd.template", m);
            }
        }
        if learns {
            let needs = |key: &'static str, on: bool, has: bool| (on && !has).then_some(key);
            let def = self.method.def();
            let missing = [
                needs("nfl", def.uses_nfl(), self.nfl.is_some()),
                needs("kg", def.uses_kg(), self.kg.is_some()),
                needs("prograd", def.uses_prograd(), self.prograd.is_some()),
                needs("subpt", def.uses_subspace(), self.subpt.is_some()),
            ];
            for key in missing.into_iter().flatten() {
                bad(key, format!("{} needs its `{key}` settings", self.method));
            }
        }
        if self.prompt.init_in_last_slots && learns {
            let words = self
                .prompt
                .ctx_init
                .as_deref()
                .map_or(0, |w| w.split(' ').count());
            if words > self.prompt.n_ctx {
                bad(
                    "prompt.n_ctx",
                    format!(
                        "{} slots cannot hold the {words} initial words",
                        self.prompt.n_ctx
                    ),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetName;
    use crate::engine::spec::Method;

    #[test]
    fn problems_name_the_settings_that_cannot_make_a_result() {
        let ok = crate::engine::presets::preset(
            crate::engine::presets::Protocol::FewShot,
            DatasetName::EuroSat,
            "d".into(),
            Method::CoopSubNfl,
            1,
            1,
            "w".into(),
        );
        assert_eq!(ok.problems(), []);
        let keys = |s: &RunSpec| s.problems().iter().map(|p| p.key).collect::<Vec<_>>();
        let mut s = ok.clone();
        s.lr = -0.5;
        s.batch_size = 0;
        assert_eq!(keys(&s), ["batch_size", "lr"]);
        let mut s = ok.clone();
        s.epochs = 0;
        assert!(keys(&s).contains(&"epochs"));
        let mut s = ok.clone();
        s.prompt.n_ctx = 0;
        assert_eq!(keys(&s), ["prompt.n_ctx"]);
        let mut s = ok.clone();
        s.subpt.as_mut().unwrap().rank = 11;
        assert_eq!(keys(&s), ["subpt.rank"]);
        let mut s = ok.clone();
        s.nfl.as_mut().unwrap().lambda = f64::NAN;
        assert_eq!(keys(&s), ["nfl.lambda"]);
        // Zero-shot CLIP learns nothing: its epochs and learning rate mean nothing to it.
        let mut z = ok.clone();
        z.method = Method::Zsclip;
        z.epochs = 0;
        z.lr = 0.0;
        assert_eq!(keys(&z), Vec::<&str>::new());
    }
}

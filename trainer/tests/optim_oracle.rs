//! SGD, the CoOp schedule, SubPT's projection and PCA against PyTorch and scikit-learn.
use crate::common;
use subpt_trainer::engine::optim::{Sgd, SgdConfig};
use subpt_trainer::engine::schedule::Schedule;
use subpt_trainer::methods::subspace::{Projector, Subspace};
use tch::{Device, Kind, Tensor};

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    ((&a - &b).abs().max() / b.abs().max()).double_value(&[])
}

#[test]
fn sgd_schedule_and_projection_match_torch() {
    let dir = tempfile::tempdir().unwrap();
    common::run("optim_oracle.py", &[dir.path().to_str().unwrap()]);
    for i in 0..4 {
        let c = common::load(&dir.path().join(format!("sgd_{i}.safetensors")));
        let lrs = Vec::<f64>::try_from(&c["lrs"]).unwrap();
        let schedule = Schedule::coop(lrs.len());
        for (e, lr) in lrs.iter().enumerate() {
            assert!(
                (schedule.lr(e) - lr).abs() <= 1e-12 * lr.abs().max(1e-5),
                "case {i} epoch {e}: ours {} torch {lr}",
                schedule.lr(e)
            );
        }
        let grads = &c["grads"];
        let steps = grads.size()[0] as usize;
        let per_epoch = steps / lrs.len();
        let mut theta = c["theta0"].copy();
        let mut sgd = Sgd::new(SgdConfig::default());
        let proj = Projector::from_components(&c["u"], Device::Cpu);
        // Cases 1..3 project; case 0 is plain SGD.
        for s in 0..steps {
            let g = grads.get(s as i64);
            let g = if i == 0 { g } else { proj.project(&g) };
            sgd.step(&mut theta, &g, schedule.lr(s / per_epoch));
            let want = c["thetas"].get(s as i64);
            let err = max_rel(&theta, &want);
            assert!(err < 1e-5, "case {i} step {s}: relative error {err}");
        }
    }
}

#[test]
fn pca_matches_scikit_learn_up_to_sign() {
    let dir = tempfile::tempdir().unwrap();
    common::run("optim_oracle.py", &[dir.path().to_str().unwrap()]);
    for i in 0..3 {
        let c = common::load(&dir.path().join(format!("pca_{i}.safetensors")));
        let traj = &c["traj"];
        let points: Vec<Tensor> = (0..traj.size()[0]).map(|r| traj.get(r)).collect();
        let want = &c["components"];
        let s = Subspace::fit(&points, want.size()[0] as usize).unwrap();
        for r in 0..want.size()[0] {
            let (a, b) = (s.components.get(r), want.get(r));
            let same = (&a - &b).abs().max().double_value(&[]);
            let flipped = (&a + &b).abs().max().double_value(&[]);
            assert!(
                same.min(flipped) < 1e-8,
                "case {i} component {r}: {same} / {flipped}"
            );
        }
        let ev = Vec::<f64>::try_from(&c["explained_variance"]).unwrap();
        let ratio = Vec::<f64>::try_from(&c["explained_variance_ratio"]).unwrap();
        for (a, b) in s.explained_variance.iter().zip(&ev) {
            assert!(
                (a - b).abs() <= 1e-9 * b.abs(),
                "case {i}: variance {a} vs {b}"
            );
        }
        for (a, b) in s.explained_variance_ratio.iter().zip(&ratio) {
            assert!((a - b).abs() <= 1e-9, "case {i}: ratio {a} vs {b}");
        }
    }
}

//! Shared train views are exact: a cell that takes its training images' features from another
//! cell's identical views (in memory, or from the cache folder in a fresh process) follows the
//! same trajectory, bit for bit on CPU, as the same cell encoding every batch itself.
mod common;
use std::collections::BTreeMap;
use std::path::Path;
use subpt_trainer::comm::Single;
use subpt_trainer::data::DatasetName;
use subpt_trainer::engine::presets::{preset, Protocol};
use subpt_trainer::engine::spec::{Method, RunSpec, SubptSpec};
use subpt_trainer::engine::{result::RunResult, run::run};
use subpt_trainer::views;
use tch::{Device, Tensor};

fn trajectory(out: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(out.join("trajectory.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn same(a: &BTreeMap<String, Tensor>, b: &BTreeMap<String, Tensor>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, t)| b.get(k).is_some_and(|u| t.equal(u)))
}

#[test]
fn cells_on_shared_views_train_bit_for_bit_as_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = common::eurosat_and_tiny_clip(d);
    let spec = |method: Method, cache: &str| {
        let mut s = preset(
            Protocol::FewShot,
            DatasetName::EuroSat,
            d.join("data"),
            method,
            4,
            1,
            w.clone(),
        );
        s.epochs = 4;
        s.batch_size = 8;
        s.cache_dir = d.join(cache);
        s.prompt.n_ctx = 4;
        if let Some(sub) = s.subpt.as_mut() {
            *sub = SubptSpec {
                rank: 2,
                early_epochs: 3,
                ..subpt_trainer::engine::presets::subpt_spec(Protocol::FewShot, 4)
            };
        }
        s
    };
    let cell = |s: &RunSpec, out: &str| -> (RunResult, BTreeMap<String, Tensor>) {
        let o = d.join(out);
        let r = run(s, &o, Device::Cpu, &Single).unwrap();
        (r, trajectory(&o))
    };
    let methods = [
        Method::Coop,
        Method::CoopSub,
        Method::CoopNfl,
        Method::Cocoop,
    ];

    // Each cell encoding every batch itself.
    views::set_enabled(false);
    let direct: Vec<_> = methods
        .iter()
        .map(|&m| cell(&spec(m, "c0"), &format!("direct-{m}")))
        .collect();
    for (r, _) in &direct {
        assert_eq!(r.train_views.reused, 0);
        assert!(r.train_views.encoded > 0);
    }

    // Shared: CoOp encodes; SubPT (early stage and retraining), NFL and CoCoOp (at the same
    // batch size here) reuse every view.
    views::set_enabled(true);
    for (i, &m) in methods.iter().enumerate() {
        let (r, traj) = cell(&spec(m, "c1"), &format!("shared-{m}"));
        assert!(
            same(&traj, &direct[i].1),
            "{m}: trajectory differs with shared views"
        );
        assert_eq!(r.accuracy, direct[i].0.accuracy, "{m}");
        match m {
            Method::Coop => assert_eq!(r.train_views, direct[0].0.train_views),
            _ => assert_eq!(
                (r.train_views.encoded, r.train_views.reused > 0),
                (0, true),
                "{m}"
            ),
        }
    }
    // A new process has an empty memory: the views come from the cache folder.
    views::clear_memory();
    let (r, traj) = cell(&spec(Method::CoopNfl, "c1"), "from-disk");
    assert!(same(&traj, &direct[2].1));
    assert_eq!(r.train_views.encoded, 0);
    // Another cache folder has none of them.
    views::clear_memory();
    let (r, _) = cell(&spec(Method::Coop, "c2"), "other-cache");
    assert_eq!(r.train_views, direct[0].0.train_views);
}

//! libtorch intra-op threads per process. A grid runs one process per rank, so the cores a
//! process may use are its node's (its affinity mask and cgroup quota, as
//! `std::thread::available_parallelism` reads them) divided by the ranks on that node: left at
//! libtorch's default, 8 ranks on a 16-core node start 128 OpenMP workers that wait on each
//! other. Small models get one thread: on `benchmarks/threads.rs` a CoOp step of the tiny and
//! the embedded Fashion-MNIST CLIP (0.2 M and 0.4 M parameters besides the token table) runs no
//! faster on two threads than on one (1.02x, 0.99x), while a 10 M model gains 1.6x and
//! ViT-B/16's shape 1.8x; a second thread that does not help only takes a core from another
//! rank or process. An explicit count (`--threads`, else `OMP_NUM_THREADS`) is used as given.
use crate::clip::Clip;
use std::sync::Mutex;

/// Models with fewer parameters than this (the token table aside) train on one thread.
pub const SMALL_MODEL_PARAMETERS: i64 = 2_000_000;

/// How many threads a process may use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub threads: usize,
    /// Given explicitly: used for every model, small or not.
    pub explicit: bool,
    pub why: String,
}

impl Budget {
    /// `flag` (`--threads`), else `OMP_NUM_THREADS`, else the usable cores shared by
    /// `ranks_on_node` processes.
    pub fn decide(
        flag: Option<usize>,
        omp: Option<&str>,
        cores: usize,
        ranks_on_node: usize,
    ) -> Self {
        if let Some(n) = flag.filter(|&n| n > 0) {
            return Budget {
                threads: n,
                explicit: true,
                why: "--threads".into(),
            };
        }
        if let Some(n) = omp
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
        {
            return Budget {
                threads: n,
                explicit: true,
                why: "OMP_NUM_THREADS".into(),
            };
        }
        let ranks = ranks_on_node.max(1);
        Budget {
            threads: (cores / ranks).max(1),
            explicit: false,
            why: format!("{cores} usable core(s) / {ranks} rank(s) on this node"),
        }
    }
}

static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);

/// Sets this process's budget (the launcher does, once, before any cell runs).
pub fn set_budget(b: Budget) {
    tracing::info!("libtorch threads: up to {} ({})", b.threads, b.why);
    *BUDGET.lock().expect("thread budget") = Some(b);
}

/// The usable cores of this process.
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The thread count for `clip`, applied to libtorch; returns it (recorded in results). Without
/// a budget set (a library caller), libtorch's own setting stands.
pub fn apply(clip: &Clip) -> usize {
    let Some(b) = BUDGET.lock().expect("thread budget").clone() else {
        return tch::get_num_threads().max(1) as usize;
    };
    let n = count_for(&b, non_embedding_parameters(clip));
    if tch::get_num_threads() != n as i32 {
        tch::set_num_threads(n as i32);
    }
    n
}

/// The rule: the budget, but one thread for a small model unless the count was explicit.
pub fn count_for(b: &Budget, parameters: i64) -> usize {
    match !b.explicit && parameters < SMALL_MODEL_PARAMETERS {
        true => 1,
        false => b.threads,
    }
}

fn non_embedding_parameters(clip: &Clip) -> i64 {
    let t = &clip.config.text;
    clip.parameters - t.vocab_size * t.width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_counts_win_then_cores_are_shared_by_ranks() {
        let b = Budget::decide(Some(3), Some("5"), 16, 8);
        assert_eq!((b.threads, b.explicit), (3, true));
        let b = Budget::decide(None, Some("5"), 16, 8);
        assert_eq!((b.threads, b.explicit), (5, true));
        let b = Budget::decide(None, Some("x"), 16, 8);
        assert_eq!((b.threads, b.explicit), (2, false));
        assert_eq!(Budget::decide(None, None, 16, 32).threads, 1);
        assert_eq!(Budget::decide(None, None, 2, 1).threads, 2);
    }

    #[test]
    fn small_models_get_one_thread_unless_asked() {
        let shared = Budget::decide(None, None, 16, 2);
        assert_eq!(count_for(&shared, 400_000), 1);
        assert_eq!(count_for(&shared, 80_000_000), 8);
        let asked = Budget::decide(Some(4), None, 16, 2);
        assert_eq!(count_for(&asked, 400_000), 4);
    }
}

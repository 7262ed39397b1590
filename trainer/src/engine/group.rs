//! Keeping a data-parallel group in step when one of its ranks fails. Every collective of a
//! cell is preceded by a failure count; a rank that fails anywhere (an error, or a panic, which
//! is how libtorch reports out-of-memory) reports its failure once, in place of its next
//! collective, and returns. The other ranks meet that report at their next collective (or at
//! the closing count) and stop too, so no rank is left waiting and no later cell's collectives
//! pair with this one's.
use super::error::RunError;
use crate::comm::Communicator;
use tch::Tensor;

/// The text of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// This rank's side of a failure count when it has not failed: an error when others have.
fn none_failed(comm: &dyn Communicator) -> Result<(), RunError> {
    match comm.count_failures(false)? {
        0 => Ok(()),
        failures => Err(RunError::PeerFailed { failures }),
    }
}

/// A sum over the group that first checks that no rank has failed.
pub(crate) fn checked_sum(comm: &dyn Communicator, t: &mut Tensor) -> Result<(), RunError> {
    none_failed(comm)?;
    Ok(comm.all_reduce_sum(t)?)
}

/// `body`, with a panic (libtorch reports out-of-memory and shape errors that way) turned into
/// `RunError::Panic`: the one place a cell's panics are caught, so one cell cannot take down a
/// grid.
pub fn guarded<T>(body: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|p| Err(RunError::Panic(panic_message(p.as_ref()))))
}

/// Runs a cell's `body` on this rank of the group (panics caught) and closes it with a failure
/// count, so the group agrees on success or failure.
pub(crate) fn in_step<T>(
    comm: &dyn Communicator,
    body: impl FnOnce() -> Result<T, RunError>,
) -> Result<T, RunError> {
    let outcome = guarded(body);
    if comm.size() == 1 {
        return outcome;
    }
    match outcome {
        Ok(v) => none_failed(comm).map(|()| v),
        // Already agreed on at a collective, or the collectives themselves broke.
        Err(e @ (RunError::PeerFailed { .. } | RunError::Comm(_))) => Err(e),
        Err(e) => {
            comm.count_failures(true)?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{checked_sum, in_step, RunError};
    use crate::comm::{CommError, Communicator};
    use crate::engine::train::reduce_over_group;
    use std::cell::RefCell;
    use tch::Tensor;

    /// This rank of a two-rank group; the other rank adds `other` to every sum and reports
    /// `other_failed` to every failure count. Records the collectives this rank makes.
    struct Pair {
        other: f64,
        other_failed: bool,
        calls: RefCell<Vec<String>>,
    }

    impl Pair {
        fn new(other: f64, other_failed: bool) -> Self {
            Pair {
                other,
                other_failed,
                calls: RefCell::new(Vec::new()),
            }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl Communicator for Pair {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), CommError> {
            self.calls.borrow_mut().push(format!("sum {}", t.numel()));
            *t = &*t + self.other;
            Ok(())
        }
        fn count_failures(&self, failed: bool) -> Result<usize, CommError> {
            self.calls.borrow_mut().push(format!("count {failed}"));
            Ok(usize::from(failed) + usize::from(self.other_failed))
        }
        fn backend(&self) -> &'static str {
            "test"
        }
    }

    #[test]
    fn gradients_are_summed_in_one_reduction_and_reshaped() {
        let pair = Pair::new(0.5, false);
        let grads = vec![
            Tensor::arange(6, tch::kind::FLOAT_CPU).view([2, 3]),
            Tensor::ones([4], tch::kind::FLOAT_CPU),
        ];
        let g = reduce_over_group(&pair, grads).unwrap();
        assert_eq!(pair.calls(), ["count false", "sum 10"]);
        assert_eq!((g[0].size(), g[1].size()), (vec![2, 3], vec![4]));
        let want = Tensor::arange(6, tch::kind::FLOAT_CPU).view([2, 3]) + 0.5;
        assert!(g[0].allclose(&want, 0.0, 0.0, false));
        assert!(g[1].allclose(
            &Tensor::full([4], 1.5, tch::kind::FLOAT_CPU),
            0.0,
            0.0,
            false
        ));
    }

    #[test]
    fn a_failed_peer_stops_the_sum_before_it_starts() {
        let pair = Pair::new(0.5, true);
        let mut t = Tensor::ones([3], tch::kind::FLOAT_CPU);
        match checked_sum(&pair, &mut t) {
            Err(RunError::PeerFailed { failures: 1 }) => {}
            other => panic!("expected a peer failure, got {other:?}"),
        }
        assert_eq!(pair.calls(), ["count false"]);
    }

    #[test]
    fn a_local_failure_is_reported_once_in_place_of_the_next_collective() {
        let pair = Pair::new(0.0, false);
        let r: Result<(), _> = in_step(&pair, || Err(RunError::Spec("bad shard".into())));
        assert!(matches!(r, Err(RunError::Spec(m)) if m == "bad shard"));
        assert_eq!(pair.calls(), ["count true"]);
        // A panic (libtorch's way of reporting out-of-memory) is a failure like any other.
        let pair = Pair::new(0.0, false);
        let r: Result<(), _> = in_step(&pair, || panic!("CUDA out of memory"));
        assert!(matches!(r, Err(RunError::Panic(m)) if m.contains("out of memory")));
        assert_eq!(pair.calls(), ["count true"]);
    }

    #[test]
    fn a_cell_on_its_own_turns_a_panic_into_an_error_too() {
        let r: Result<(), _> = in_step(&crate::comm::Single, || panic!("shape mismatch"));
        assert!(matches!(r, Err(RunError::Panic(m)) if m.contains("shape mismatch")));
        let r: Result<(), _> = super::guarded(|| panic!("in the feature cell"));
        assert!(matches!(r, Err(RunError::Panic(m)) if m.contains("feature cell")));
    }

    #[test]
    fn success_is_agreed_on_at_the_closing_count() {
        let pair = Pair::new(0.0, false);
        assert_eq!(in_step(&pair, || Ok(7)).unwrap(), 7);
        assert_eq!(pair.calls(), ["count false"]);
        // The other rank failed after this one's last collective (say, in its evaluation).
        let pair = Pair::new(0.0, true);
        let r = in_step(&pair, || Ok(7));
        assert!(matches!(r, Err(RunError::PeerFailed { failures: 1 })));
        // A failure already agreed on at a collective is not reported again.
        let pair = Pair::new(0.0, true);
        let r: Result<(), _> = in_step(&pair, || {
            checked_sum(&pair, &mut Tensor::ones([1], tch::kind::FLOAT_CPU))
        });
        assert!(matches!(r, Err(RunError::PeerFailed { .. })));
        assert_eq!(pair.calls(), ["count false"]);
    }
}

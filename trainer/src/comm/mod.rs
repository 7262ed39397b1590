//! Gradient communication for data-parallel cells. The trainer only sees this trait: a group
//! of ranks training one cell sums the prompt gradient here *before* SubPT's projection, so
//! every rank applies the same update.
mod mpi_backend;

pub use mpi_backend::MpiComm;
use tch::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum CommError {
    #[error("all-reduce over {backend}: {msg}")]
    Reduce { backend: &'static str, msg: String },
}

pub trait Communicator {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Element-wise sum of `t` over the group, written back into `t` on every rank.
    fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), CommError>;
    fn backend(&self) -> &'static str;
}

/// A group of one: training without data parallelism.
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _t: &mut Tensor) -> Result<(), CommError> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "single"
    }
}

/// The contiguous share of `n` items that `rank` of `size` takes (the first `n % size` ranks
/// take one more), so shards cover a batch in order.
pub fn shard(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let base = n / size;
    let extra = n % size;
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start..start + len
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_cover_in_order() {
        for n in 0..40 {
            for size in 1..6 {
                let mut next = 0;
                for r in 0..size {
                    let s = super::shard(n, r, size);
                    assert_eq!(s.start, next);
                    next = s.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}

//! Gradient communication for data-parallel cells. The trainer only sees this trait: a group
//! of ranks training one cell sums the prompt gradient here *before* SubPT's projection, so
//! every rank applies the same update.
mod mpi_backend;
mod nccl_backend;

use mpi::topology::SimpleCommunicator;
pub use mpi_backend::MpiComm;
pub use nccl_backend::NcclComm;
use tch::{Device, Tensor};

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
    /// How many ranks of the group report `failed` (collective, a single number).
    fn count_failures(&self, failed: bool) -> Result<usize, CommError>;
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
    fn count_failures(&self, failed: bool) -> Result<usize, CommError> {
        Ok(usize::from(failed))
    }
    fn backend(&self) -> &'static str {
        "single"
    }
}

/// The communicator for a data-parallel group on `device`: NCCL when every rank of the group
/// is on a GPU of its own and the CUDA driver and NCCL load everywhere, else MPI (GPU tensors
/// then travel through host memory). Collective: every rank of `group` calls it with its own
/// device, and all reach the same choice.
pub fn data_parallel(
    group: SimpleCommunicator,
    device: Device,
) -> Result<Box<dyn Communicator>, CommError> {
    use mpi::traits::Communicator as _;
    if group.size() == 1 {
        // A group of one never reduces.
        return Ok(Box::new(MpiComm::new(group)));
    }
    let comm: Box<dyn Communicator> = match nccl_usable(&group, device) {
        Ok(ordinal) => Box::new(NcclComm::new(&group, ordinal)?),
        Err(why) => {
            if device.is_cuda() {
                tracing::warn!("the data-parallel group reduces over MPI: {why}");
            }
            Box::new(MpiComm::new(group))
        }
    };
    if comm.rank() == 0 {
        tracing::info!(
            "data-parallel group of {} ranks, gradients all-reduced over {}",
            comm.size(),
            comm.backend()
        );
    }
    Ok(comm)
}

/// This rank's GPU when every rank of `group` can join an NCCL communicator: each is on a GPU,
/// NCCL loads everywhere and no two ranks share a GPU (NCCL refuses that; GPUs are told apart
/// by host and PCI address, which per-rank `CUDA_VISIBLE_DEVICES` does not disguise).
fn nccl_usable(group: &SimpleCommunicator, device: Device) -> Result<usize, String> {
    use mpi::traits::{Communicator as _, CommunicatorCollectives};
    use std::hash::{Hash, Hasher};
    let mut host = std::collections::hash_map::DefaultHasher::new();
    mpi::environment::processor_name()
        .unwrap_or_default()
        .hash(&mut host);
    let ordinal = match device {
        Device::Cuda(ordinal) => Some(ordinal),
        _ => None,
    };
    let gpu = ordinal
        .filter(|_| NcclComm::available())
        .and_then(nccl_backend::gpu_identity);
    let mine = [host.finish(), gpu.unwrap_or(0), u64::from(gpu.is_some())];
    let mut all = vec![0u64; 3 * group.size() as usize];
    group.all_gather_into(&mine[..], &mut all[..]);
    let ranks: Vec<&[u64]> = all.chunks_exact(3).collect();
    if let Some(r) = ranks.iter().position(|r| r[2] == 0) {
        return Err(format!(
            "rank {r} of the group is not on a GPU that NCCL can use"
        ));
    }
    for (i, a) in ranks.iter().enumerate() {
        if let Some(j) = ranks[..i].iter().position(|b| b[..2] == a[..2]) {
            return Err(format!("ranks {j} and {i} of the group share a GPU"));
        }
    }
    Ok(ordinal.expect("this rank reported a GPU"))
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

//! MPI all-reduce (CPU tensors; GPU tensors are staged through host memory).
use super::{CommError, Communicator};
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives};
use tch::{Device, Kind, Tensor};

pub struct MpiComm {
    comm: SimpleCommunicator,
}

impl MpiComm {
    pub fn new(comm: SimpleCommunicator) -> Self {
        MpiComm { comm }
    }
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }
    fn size(&self) -> usize {
        self.comm.size() as usize
    }
    fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), CommError> {
        let err = |msg: String| CommError::Reduce {
            backend: "mpi",
            msg,
        };
        let device = t.device();
        let kind = t.kind();
        let host = t
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Double)
            .contiguous()
            .view([-1]);
        let local = Vec::<f64>::try_from(&host).map_err(|e| err(e.to_string()))?;
        let mut global = vec![0.0f64; local.len()];
        self.comm
            .all_reduce_into(&local[..], &mut global[..], SystemOperation::sum());
        let summed = Tensor::from_slice(&global)
            .view(t.size().as_slice())
            .to_kind(kind)
            .to_device(device);
        tch::no_grad(|| t.copy_(&summed));
        Ok(())
    }
    fn count_failures(&self, failed: bool) -> Result<usize, CommError> {
        let mut total = 0u32;
        self.comm
            .all_reduce_into(&u32::from(failed), &mut total, SystemOperation::sum());
        Ok(total as usize)
    }
    fn backend(&self) -> &'static str {
        "mpi"
    }
}

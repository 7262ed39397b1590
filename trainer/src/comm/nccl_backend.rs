//! NCCL all-reduce for data-parallel groups on GPUs. The library is loaded at run time
//! (cudarc's dynamic loading), so the crate builds and runs on machines without CUDA; the group
//! uses NCCL only when the cell's device is a GPU and both the driver and NCCL load.
use super::{CommError, Communicator};
use cudarc::driver::CudaContext;
use cudarc::nccl::{result, sys};
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub struct NcclComm {
    comm: sys::ncclComm_t,
    rank: usize,
    size: usize,
    ordinal: usize,
    // Keeps the device's primary context (the one libtorch uses) retained and current.
    ctx: Arc<CudaContext>,
}

fn err(msg: impl std::fmt::Display) -> CommError {
    CommError::Reduce {
        backend: "nccl",
        msg: msg.to_string(),
    }
}

impl NcclComm {
    /// Whether the CUDA driver and NCCL libraries can be loaded in this process.
    pub fn available() -> bool {
        // SAFETY: only tries to dlopen the libraries; no symbol is called.
        unsafe { cudarc::driver::sys::is_culib_present() && sys::is_culib_present() }
    }

    /// Joins the ranks of `group` into one NCCL communicator on GPU `ordinal` (collective:
    /// every rank of the group calls it). Rank 0's unique id travels over MPI; a rank that
    /// cannot take its GPU fails the setup on every rank instead of leaving them waiting.
    pub fn new(group: &SimpleCommunicator, ordinal: usize) -> Result<Self, CommError> {
        let (rank, size) = (group.rank(), group.size());
        let ctx = CudaContext::new(ordinal).map_err(|e| format!("cuda:{ordinal}: {e:?}"));
        let mut failed = 0u32;
        group.all_reduce_into(
            &u32::from(ctx.is_err()),
            &mut failed,
            SystemOperation::sum(),
        );
        let ctx = ctx.map_err(err)?;
        if failed > 0 {
            return Err(err(format!(
                "{failed} rank(s) of the group could not take their GPU"
            )));
        }
        // Byte 0: whether rank 0 has an id to give; then the id.
        let mut id = [0u8; 129];
        if rank == 0 {
            if let Ok(unique) = result::get_uniqueid() {
                id[0] = 1;
                for (dst, src) in id[1..].iter_mut().zip(unique.internal) {
                    *dst = src as u8;
                }
            }
        }
        group.process_at_rank(0).broadcast_into(&mut id[..]);
        if id[0] == 0 {
            return Err(err("ncclGetUniqueId failed on rank 0 of the group"));
        }
        let mut unique = sys::ncclUniqueId { internal: [0; 128] };
        for (dst, src) in unique.internal.iter_mut().zip(&id[1..]) {
            *dst = *src as _;
        }
        let mut comm: sys::ncclComm_t = std::ptr::null_mut();
        // SAFETY: `comm` is a valid out-pointer; the primary context of `ordinal` is current.
        unsafe { result::comm_init_rank(&mut comm, size, unique, rank) }
            .map_err(|e| err(format!("ncclCommInitRank: {e:?}")))?;
        Ok(NcclComm {
            comm,
            rank: rank as usize,
            size: size as usize,
            ordinal,
            ctx,
        })
    }
}

/// A GPU's place in its machine (PCI domain, bus and device), the same whatever
/// `CUDA_VISIBLE_DEVICES` numbers it; `None` when the driver cannot tell.
pub(super) fn gpu_identity(ordinal: usize) -> Option<u64> {
    use cudarc::driver::result::{device, init};
    use cudarc::driver::sys::CUdevice_attribute_enum as A;
    init().ok()?;
    let dev = device::get(ordinal as i32).ok()?;
    // SAFETY: `dev` is a valid device handle from cuDeviceGet.
    let attr = |a| unsafe { device::get_attribute(dev, a) }.ok();
    let domain = attr(A::CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)? as u64;
    let bus = attr(A::CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)? as u64;
    let slot = attr(A::CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)? as u64;
    Some((domain << 32) | (bus << 8) | slot)
}

fn nccl_type(kind: Kind) -> Option<sys::ncclDataType_t> {
    Some(match kind {
        Kind::Float => sys::ncclDataType_t::ncclFloat32,
        Kind::Double => sys::ncclDataType_t::ncclFloat64,
        Kind::Half => sys::ncclDataType_t::ncclFloat16,
        Kind::BFloat16 => sys::ncclDataType_t::ncclBfloat16,
        _ => return None,
    })
}

impl Communicator for NcclComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum(&self, t: &mut Tensor) -> Result<(), CommError> {
        if t.device() != Device::Cuda(self.ordinal) {
            return Err(err(format!(
                "tensor on {:?}, communicator on cuda:{}",
                t.device(),
                self.ordinal
            )));
        }
        let dtype = nccl_type(t.kind()).ok_or_else(|| err(format!("{:?}", t.kind())))?;
        self.ctx
            .bind_to_thread()
            .map_err(|e| err(format!("{e:?}")))?;
        let buf = t.detach().contiguous();
        // SAFETY: `buf` is a live contiguous CUDA tensor of `numel` elements of `dtype` on this
        // communicator's device. The null stream is libtorch's default stream, so the reduction
        // is ordered after the backward pass that wrote `buf` and before any later kernel.
        unsafe {
            result::all_reduce(
                buf.data_ptr(),
                buf.data_ptr(),
                buf.numel(),
                dtype,
                sys::ncclRedOp_t::ncclSum,
                self.comm,
                std::ptr::null_mut(),
            )
        }
        .map_err(|e| err(format!("ncclAllReduce: {e:?}")))?;
        if buf.data_ptr() != t.data_ptr() {
            tch::no_grad(|| t.copy_(&buf));
        }
        Ok(())
    }
    fn count_failures(&self, failed: bool) -> Result<usize, CommError> {
        let mut flag = Tensor::from_slice(&[f32::from(u8::from(failed))])
            .to_device(Device::Cuda(self.ordinal));
        self.all_reduce_sum(&mut flag)?;
        Ok(flag.double_value(&[0]).round() as usize)
    }
    fn backend(&self) -> &'static str {
        "nccl"
    }
}

impl Drop for NcclComm {
    fn drop(&mut self) {
        // SAFETY: the communicator was initialised in `new` and is destroyed once.
        let _ = unsafe { result::comm_destroy(self.comm) };
    }
}

//! The communicator choice for data-parallel groups: NCCL is loaded at run time, so a machine
//! without CUDA builds and reports NCCL unusable; a group of one needs no NCCL; on a GPU
//! machine a one-rank NCCL communicator reduces in place (contiguous or not, fp32 and fp16) and
//! refuses tensors on another device. (Groups of several GPUs: scripts/gpu-check.sh.)
use mpi::traits::Communicator as _;
use subpt_trainer::comm::{data_parallel, Communicator, NcclComm};
use tch::{Device, Kind, Tensor};

#[test]
fn nccl_is_chosen_only_where_it_can_run() {
    let universe = mpi::initialize().expect("MPI initialises once per process");
    let gpu = tch::Cuda::is_available();
    // SAFETY: only tries to load the driver library.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        assert!(
            !NcclComm::available(),
            "no CUDA driver, yet NCCL claims to be usable"
        );
    }
    let world = universe.world();
    let single = data_parallel(world.duplicate(), Device::Cuda(0)).unwrap();
    assert_eq!(single.backend(), "mpi");
    assert_eq!((single.rank(), single.size()), (0, 1));
    if !(gpu && NcclComm::available()) {
        eprintln!("no CUDA GPU with NCCL here: the in-place reduction is checked on GPU machines");
        return;
    }
    let comm = NcclComm::new(&world, 0).unwrap();
    assert_eq!((comm.rank(), comm.size(), comm.backend()), (0, 1, "nccl"));
    let t = Tensor::randn([3, 4], (Kind::Float, Device::Cuda(0)));
    let mut x = t.copy();
    comm.all_reduce_sum(&mut x).unwrap();
    assert!(x.allclose(&t, 0.0, 0.0, false));
    let mut y = t.copy().tr();
    comm.all_reduce_sum(&mut y).unwrap();
    assert!(y.allclose(&t.tr(), 0.0, 0.0, false));
    let mut h = Tensor::ones([2], (Kind::Half, Device::Cuda(0)));
    comm.all_reduce_sum(&mut h).unwrap();
    assert_eq!(
        h.to_kind(Kind::Float).sum(Kind::Float).double_value(&[]),
        2.0
    );
    let mut cpu = Tensor::ones([2], (Kind::Float, Device::Cpu));
    assert!(comm.all_reduce_sum(&mut cpu).is_err());
}

//! The communicator choice for data-parallel groups: NCCL is loaded at run time, so a machine
//! without CUDA builds, reports NCCL unusable and falls back to MPI; on a GPU machine a
//! one-rank NCCL communicator reduces in place (contiguous or not) and refuses foreign devices.
use subpt_trainer::comm::{data_parallel, NcclComm};
use tch::{Device, Kind, Tensor};

#[test]
fn nccl_is_chosen_only_where_it_can_run() {
    let universe = mpi::initialize().expect("MPI initialises once per process");
    let gpu = tch::Cuda::is_available();
    if !std::path::Path::new("/proc/driver/nvidia/version").exists() {
        assert!(
            !NcclComm::available(),
            "no CUDA driver, yet NCCL claims to be usable"
        );
    }
    // A GPU device without a usable NCCL (or without a GPU at all) falls back to MPI.
    let comm = data_parallel(universe.world(), Device::Cuda(0)).unwrap();
    let expected = if gpu && NcclComm::available() {
        "nccl"
    } else {
        "mpi"
    };
    assert_eq!(comm.backend(), expected);
    assert_eq!((comm.rank(), comm.size()), (0, 1));
    if expected != "nccl" {
        eprintln!("no CUDA GPU with NCCL here: the in-place reduction is checked on GPU machines");
        return;
    }
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

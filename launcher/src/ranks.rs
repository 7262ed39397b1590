//! Where this process sits in an mpirun launch, read from the launcher's environment so the
//! decision to initialise MPI comes before MPI itself.

/// The world size when started by mpirun (Open MPI or a PMI-based launcher), else 1.
pub fn launched_world_size() -> usize {
    first_number(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]).unwrap_or(1)
}

/// This process's world rank when started by mpirun, else 0.
pub fn launched_world_rank() -> usize {
    first_number(&["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]).unwrap_or(0)
}

/// The ranks of this launch on this node (Open MPI, MPICH/Hydra, PMIx, Slurm), else 1.
pub fn launched_local_size() -> usize {
    first_number(&[
        "OMPI_COMM_WORLD_LOCAL_SIZE",
        "MPI_LOCALNRANKS",
        "PMIX_LOCAL_SIZE",
        "SLURM_NTASKS_PER_NODE",
    ])
    .unwrap_or(1)
}

/// Sets the libtorch thread budget of this process from `--threads`, `OMP_NUM_THREADS` or the
/// node's cores shared by its ranks (see `subpt_trainer::threads`).
pub fn set_thread_budget(flag: Option<usize>) {
    subpt_trainer::threads::set_budget(subpt_trainer::threads::Budget::decide(
        flag,
        std::env::var("OMP_NUM_THREADS").ok().as_deref(),
        subpt_trainer::threads::usable_cores(),
        launched_local_size(),
    ));
}

/// One GPU per local rank when CUDA is in use: local rank `l` takes `cuda:(l mod gpus)`.
pub fn local_device(device: tch::Device) -> tch::Device {
    let local = first_number(&[
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]);
    match (device, local) {
        (tch::Device::Cuda(_), Some(l)) => {
            tch::Device::Cuda(l % (tch::Cuda::device_count().max(1) as usize))
        }
        _ => device,
    }
}

fn first_number(keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())
}

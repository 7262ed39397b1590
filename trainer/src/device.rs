//! Device selection shared by every command.
use tch::Device;

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`; `auto` picks the first GPU when one is usable.
pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => require_cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => require_cuda(i),
            _ => Err(format!("unknown device `{s}` (auto, cpu, cuda, cuda:N)")),
        },
    }
}

fn require_cuda(i: usize) -> Result<Device, String> {
    let n = tch::Cuda::device_count() as usize;
    if i < n {
        Ok(Device::Cuda(i))
    } else {
        Err(format!(
            "cuda:{i} requested but {n} CUDA device(s) are usable by this build"
        ))
    }
}

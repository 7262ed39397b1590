//! Shared build script: lets binaries and test executables find libtorch at run time without
//! LD_LIBRARY_PATH, and links torch_cuda for real when a CUDA machine is detected (otherwise the
//! linker drops it as unused and `Cuda::is_available()` stays false).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=SUBPT_LINK_CUDA");
    let Some(libtorch) = std::env::var_os("LIBTORCH") else {
        println!("cargo:warning=LIBTORCH is not set; binaries will need LD_LIBRARY_PATH to find libtorch");
        return;
    };
    let lib = PathBuf::from(libtorch).join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // NCCL is dlopen'ed by name for data-parallel GPU groups; the PyPI wheel keeps it beside
    // torch (setup-venv.sh adds the unversioned name cudarc asks for).
    let nccl = lib.join("../../nvidia/nccl/lib");
    if nccl.join("libnccl.so.2").exists() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", nccl.display());
    }
    let want_cuda = match std::env::var("SUBPT_LINK_CUDA").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::path::Path::new("/proc/driver/nvidia/version").exists(),
    };
    if want_cuda && lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

//! With the `cuda` feature, compiles `src/kernels/delta_decode.cu` to PTX (nvcc from PATH, for
//! `compute_$CUDA_COMPUTE_CAP`, default 90 = H100/H200) into `$OUT_DIR/delta_decode.ptx`, which
//! `kernels::delta_decode_cuda` embeds; the driver JIT-compiles it on first use. CPU builds need nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/kernels/delta_decode.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("delta_decode.ptx");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let status = Command::new("nvcc")
        .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
        .arg(&out)
        .arg("src/kernels/delta_decode.cu")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("nvcc failed ({s}) compiling src/kernels/delta_decode.cu"),
        Err(e) => panic!("the cuda feature needs nvcc on PATH (scripts/build_cuda.sh provides it): {e}"),
    }
}

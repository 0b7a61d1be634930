//! With the `cuda` feature, compiles the CUDA kernels of `src/kernels/` (`decode_ops.cu`, `delta_decode.cu`,
//! `delta_rule.cu`, `train_ops.cu`) to PTX (nvcc from PATH, for `compute_$CUDA_COMPUTE_CAP`, default 90 =
//! H100/H200) into `$OUT_DIR/<name>.ptx`, which the `kernels::*_cuda` modules embed; the driver JIT-compiles them
//! on first use. CPU builds need nothing.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: [&str; 4] = ["decode_ops", "delta_decode", "delta_rule", "train_ops"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for k in KERNELS {
        println!("cargo:rerun-if-changed=src/kernels/{k}.cu");
    }
    println!("cargo:rerun-if-changed=src/kernels/block_reduce.cuh");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    for k in KERNELS {
        let src = format!("src/kernels/{k}.cu");
        let status = Command::new("nvcc")
            .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
            .arg(out_dir.join(format!("{k}.ptx")))
            .arg(&src)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("nvcc failed ({s}) compiling {src}"),
            Err(e) => panic!("the cuda feature needs nvcc on PATH (scripts/build_cuda.sh provides it): {e}"),
        }
    }
}

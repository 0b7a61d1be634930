//! The gated delta rule's CUDA kernels (`src/kernels/delta_rule.cu`) run on the CPU through a stand-in for the CUDA
//! features they use (`tools/cuda_emu/emu.h`: a thread per GPU thread, barriers, warp shuffles through a shared
//! buffer), against the CPU node in f64: the forward from a zero and from a given state (output and final state)
//! and the backward (the gradients of all five inputs). This checks the kernels' indexing, block replay and warp
//! reductions on a machine without a GPU; `examples/cuda_check.rs` checks the same on a GPU. Needs a C++20
//! compiler (`$CXX`, default `c++`), which the build already needs for the tokenizer's dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor, Var};
use sgvlm_model::kernels::delta_rule::gated_delta_rule_with_state;
use sgvlm_model::kernels::gated_delta_rule;

fn emulator(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/cuda_emu/delta_rule_emu.cpp");
    let exe = dir.join("delta_rule_emu");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&cxx)
        .args(["-std=c++20", "-O1", "-pthread", "-Wno-unknown-pragmas", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx}: {e}"));
    assert!(out.status.success(), "compiling {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));
    exe
}

fn write(path: &Path, t: &Tensor) {
    let v: Vec<f32> = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    std::fs::write(path, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn read(path: &Path, dims: &[usize]) -> Tensor {
    let bytes = std::fs::read(path).unwrap();
    let v: Vec<f64> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let num: f64 = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar().unwrap();
    let den: f64 = b.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar().unwrap();
    if num.is_nan() {
        f64::INFINITY
    } else {
        num / den.max(1e-30)
    }
}

/// Heads-first inputs as the kernels get them: q, k of norm ~1 (q scaled), v, g < 0, beta in (0, 1).
fn inputs(b: usize, h: usize, t: usize, dk: usize, dv: usize) -> [Tensor; 5] {
    let n = |dims: &[usize], std: f64| Tensor::randn(0f64, std, dims, &Device::Cpu).unwrap();
    let unit = |x: Tensor| x.broadcast_div(&x.sqr().unwrap().sum_keepdim(3).unwrap().sqrt().unwrap()).unwrap();
    let q = (unit(n(&[b, h, t, dk], 1.0)) * (dk as f64).powf(-0.5)).unwrap();
    let k = unit(n(&[b, h, t, dk], 1.0));
    let g = (n(&[b, h, t], 0.5) - 1.5).unwrap().exp().unwrap().neg().unwrap();
    let beta = candle_nn::ops::sigmoid(&n(&[b, h, t], 1.0)).unwrap();
    [q, k, n(&[b, h, t, dv], 1.0), g, beta]
}

fn pack(x: &[Tensor; 5]) -> Tensor {
    Tensor::cat(&[&x[0], &x[1], &x[2], &x[3].unsqueeze(3).unwrap(), &x[4].unsqueeze(3).unwrap()], 3).unwrap()
}

fn run(exe: &Path, mode: &str, dk: usize, dv: usize, bh: usize, t: usize, dir: &Path) {
    let out = Command::new(exe)
        .args([mode, &dk.to_string(), &dv.to_string(), &bh.to_string(), &t.to_string()])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "emulator {mode}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_cuda_delta_rule_kernels_compute_the_cpu_node_and_its_gradients() {
    let tmp = std::env::temp_dir().join(format!("sgvlm-cuda-emu-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = emulator(&tmp);
    // (d_k, d_v, batch, heads, tokens): every instantiated d_k; d_v below a warp (idle lanes), not a multiple of
    // 32, and of several warps; token counts below, at and past the backward's 32-token blocks.
    let cases = [(16, 16, 2, 3, 45), (32, 32, 1, 2, 77), (64, 48, 1, 2, 40), (128, 64, 1, 1, 33)];
    for (dk, dv, b, h, t) in cases {
        let name = format!("d_k {dk}, d_v {dv}, {t} tokens");
        let x = inputs(b, h, t, dk, dv);
        write(&tmp.join("x.bin"), &pack(&x));

        // Forward from a zero state, then from a given one.
        for init in [None, Some(Tensor::randn(0f64, 0.3, (b, h, dk, dv), &Device::Cpu).unwrap())] {
            let _ = std::fs::remove_file(tmp.join("init.bin"));
            if let Some(s) = &init {
                write(&tmp.join("init.bin"), s);
            }
            run(&exe, "fwd", dk, dv, b * h, t, &tmp);
            let [q, k, v, g, beta] = &x;
            let (o_ref, s_ref) = gated_delta_rule_with_state(q, k, v, g, beta, init.as_ref()).unwrap();
            let e_out = rel_err(&read(&tmp.join("out.bin"), &[b, h, t, dv]), &o_ref);
            let e_state = rel_err(&read(&tmp.join("final.bin"), &[b, h, dk, dv]), &s_ref);
            let from = if init.is_some() { "a state" } else { "zero" };
            assert!(e_out < 1e-5 && e_state < 1e-5, "{name}, from {from}: output {e_out:e}, state {e_state:e}");
        }

        // Backward: the gradient of sum(o ⊙ seed) for each input.
        let seed = Tensor::randn(0f64, 1.0, (b, h, t, dv), &Device::Cpu).unwrap();
        write(&tmp.join("dout.bin"), &seed);
        run(&exe, "bwd", dk, dv, b * h, t, &tmp);
        let dx = read(&tmp.join("dx.bin"), &[b, h, t, 2 * dk + dv + 2]);
        let vars: Vec<Var> = x.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let [q, k, v, g, beta] = [0, 1, 2, 3, 4].map(|i| vars[i].as_tensor());
        let o = gated_delta_rule(q, k, v, g, beta).unwrap();
        let grads = (o * &seed).unwrap().sum_all().unwrap().backward().unwrap();
        let parts =
            [("dq", 0, dk), ("dk", dk, dk), ("dv", 2 * dk, dv), ("dg", 2 * dk + dv, 1), ("dbeta", 2 * dk + dv + 1, 1)];
        for (i, (part, start, len)) in parts.into_iter().enumerate() {
            let got = dx.narrow(3, start, len).unwrap();
            let want = grads.get(vars[i].as_tensor()).unwrap().reshape(got.dims()).unwrap();
            let e = rel_err(&got, &want);
            assert!(e < 1e-4, "{name}: {part} differs by {e:e}");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

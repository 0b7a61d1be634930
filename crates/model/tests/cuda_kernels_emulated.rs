//! Our CUDA kernels for training and the prefill run on the CPU through a stand-in for the CUDA features they use
//! (`tools/cuda_emu/emu.h`: a thread per GPU thread, barriers, warp shuffles through a shared buffer, atomics),
//! against the CPU nodes in f64, with the launch shapes the `*_cuda.rs` modules use:
//! * the gated delta rule (`src/kernels/delta_rule.cu`): the forward from a zero and from a given state (output and
//!   final state) and the backward (the gradients of all five inputs);
//! * the training kernels' twins (`src/kernels/train_ops.cu`): normalisation with and without a weight, the scaled
//!   and causally masked softmax, `silu(a)·b`, the causal conv with its SiLU, the rotary embedding, the packing
//!   of the delta rule's inputs — values and every input's gradient; the AdamW update, to the last bit.
//!
//! * the fused decode kernels (`src/kernels/decode_ops.cu`: the residual add with the RMSNorm, the gated norm,
//!   `silu(gate)·up` from one product) and the Gated DeltaNet decode step read from a fused projection
//!   (`src/kernels/delta_decode.cu`), in f32 and bf16, against the CPU ops of `kernels::decode_ops` and
//!   `kernels::delta_decode_proj_into`; and a full-attention layer's decode step (`attn_prep`, and the masked
//!   softmax and output gate of `attn_decode`).
//!
//! This checks the kernels' indexing, block replay, reductions and striding on a machine without a GPU;
//! `examples/cuda_check.rs` checks the compiled kernels on a GPU. Needs a C++20 compiler (`$CXX`, default `c++`),
//! which the build already needs for the tokenizer's dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device, Tensor, Var};
use sgvlm_model::kernels::delta_rule::gated_delta_rule_with_state;
use sgvlm_model::kernels::{
    adamw_update, conv_silu, delta_pack, gated_delta_rule, normalize, rms_norm, rope, silu_mul, softmax, AdamWStep,
    PackHeads,
};
use sgvlm_model::kernels::{
    add_rms_norm, attn_decode, attn_prep, delta_decode_proj_into, gated_rms_norm, silu_mul_halves, AttnHeads,
    DeltaHeads, ProjColumns, ProjStep,
};

fn emulator(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tools/cuda_emu/{name}.cpp"));
    let exe = dir.join(name);
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
    let tmp = std::env::temp_dir().join(format!("sgvlm-cuda-emu-rule-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = emulator(&tmp, "delta_rule_emu");
    // (d_k, d_v, batch, heads, tokens): every instantiated d_k; d_v below a warp (idle lanes), not a multiple of
    // 32, and of several warps; token counts below, at and past the backward's 32-token blocks; d_v not a multiple
    // of the forward's 16-column blocks, and one or two tokens (the forward's token pipeline).
    let cases = [
        (16, 16, 2, 3, 45),
        (32, 32, 1, 2, 77),
        (64, 48, 1, 2, 40),
        (128, 64, 1, 1, 33),
        (32, 24, 1, 1, 1),
        (16, 20, 2, 1, 2),
    ];
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
        let xs: Vec<&Tensor> = x.iter().collect();
        let (_, grads) = reference(&xs, &seed, |t| gated_delta_rule(t[0], t[1], t[2], t[3], t[4]).unwrap());
        let parts =
            [("dq", 0, dk), ("dk", dk, dk), ("dv", 2 * dk, dv), ("dg", 2 * dk + dv, 1), ("dbeta", 2 * dk + dv + 1, 1)];
        for (i, (part, start, len)) in parts.into_iter().enumerate() {
            let got = dx.narrow(3, start, len).unwrap();
            let want = grads[i].reshape(got.dims()).unwrap();
            let e = rel_err(&got, &want);
            assert!(e < 1e-4, "{name}: {part} differs by {e:e}");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Runs one kernel of `train_ops_emu` with `args` on `inputs` (written as `NAME.bin`) and reads `outputs` back.
fn train_op(
    exe: &Path,
    dir: &Path,
    kernel: &str,
    args: &[String],
    inputs: &[(&str, &Tensor)],
    outputs: &[(&str, &[usize])],
) -> Vec<Tensor> {
    for (name, t) in inputs {
        write(&dir.join(format!("{name}.bin")), t);
    }
    let out = Command::new(exe).arg(dir).arg(kernel).args(args).output().unwrap();
    assert!(out.status.success(), "emulator {kernel}: {}", String::from_utf8_lossy(&out.stderr));
    outputs.iter().map(|(name, dims)| read(&dir.join(format!("{name}.bin")), dims)).collect()
}

/// Value and gradients of `f` (f64, on the CPU node) at `xs` for the output gradient `g`.
fn reference(xs: &[&Tensor], g: &Tensor, f: impl Fn(&[&Tensor]) -> Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = xs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    let y = f(&ts);
    let grads = (y.clone() * g).unwrap().sum_all().unwrap().backward().unwrap();
    (y.detach(), vars.iter().map(|v| grads.get(v.as_tensor()).unwrap().clone()).collect())
}

fn close(name: &str, got: &Tensor, want: &Tensor) {
    let e = rel_err(got, want);
    assert!(e < 1e-5, "{name}: differs from the CPU node by {e:e}");
}

#[test]
fn the_cuda_training_kernels_compute_the_cpu_nodes_and_their_gradients() {
    let tmp = std::env::temp_dir().join(format!("sgvlm-cuda-emu-ops-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = emulator(&tmp, "train_ops_emu");
    let n = |dims: &[usize], std: f64| Tensor::randn(0f64, std, dims, &Device::Cpu).unwrap();
    let s = |v: &[f64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    // Normalisation: rows longer than a block's 128 threads, RMS and L2, with and without a weight.
    let (rows, width, eps) = (5, 300, 1e-6);
    let x = n(&[rows, width], 2.0);
    let g = n(&[rows, width], 1.0);
    for mean in [true, false] {
        let (y, dx) = reference(&[&x], &g, |t| normalize(t[0], eps, mean).unwrap());
        let args = s(&[rows as f64, width as f64, eps, mean as u8 as f64, 0.0, 0.0]);
        let got = train_op(&exe, &tmp, "norm_fwd", &args, &[("x", &x)], &[("y", &[rows, width])]);
        close(&format!("normalize (mean {mean})"), &got[0], &y);
        let got = train_op(&exe, &tmp, "norm_bwd", &args, &[("x", &x), ("g", &g)], &[("dx", &[rows, width])]);
        close(&format!("normalize gradient (mean {mean})"), &got[0], &dx[0]);
    }
    let w = n(&[width], 0.5);
    for plus_one in [false, true] {
        let (y, d) = reference(&[&x, &w], &g, |t| rms_norm(t[0], t[1], eps, plus_one).unwrap());
        let args = s(&[rows as f64, width as f64, eps, 1.0, plus_one as u8 as f64, 1.0]);
        let got = train_op(&exe, &tmp, "norm_fwd", &args, &[("x", &x), ("w", &w)], &[("y", &[rows, width])]);
        close(&format!("rms_norm (plus_one {plus_one})"), &got[0], &y);
        let outs: [(&str, &[usize]); 2] = [("dx", &[rows, width]), ("dw", &[width])];
        let got = train_op(&exe, &tmp, "norm_bwd", &args, &[("x", &x), ("w", &w), ("g", &g)], &outs);
        close("rms_norm dx", &got[0], &d[0]);
        close("rms_norm dw", &got[1], &d[1]);
    }

    // Softmax: causal score blocks [2, 3, T, past + T], and plain rows longer than a block.
    for (dims, past, scale) in [(vec![2, 3, 7, 10], Some(3), 0.3), (vec![4, 300], None, 1.0)] {
        let x = n(&dims, 2.0);
        let g = n(&dims, 1.0);
        let (p, dx) = reference(&[&x], &g, |t| softmax(t[0], scale, past).unwrap());
        let (width, t_rows) = (dims[dims.len() - 1], dims[dims.len() - 2]);
        let rows = x.elem_count() / width;
        let args = s(&[rows as f64, width as f64, t_rows as f64, past.map_or(-1.0, |p| p as f64), scale]);
        let got = train_op(&exe, &tmp, "softmax_fwd", &args, &[("x", &x)], &[("y", &dims)]);
        close(&format!("softmax {dims:?}"), &got[0], &p);
        let got = train_op(&exe, &tmp, "softmax_bwd", &args, &[("p", &p), ("g", &g)], &[("dx", &dims)]);
        close(&format!("softmax gradient {dims:?}"), &got[0], &dx[0]);
    }

    // silu(a)·b over more elements than one block.
    let dims = [3, 7, 50];
    let (a, b, g) = (n(&dims, 2.0), n(&dims, 1.0), n(&dims, 1.0));
    let (y, d) = reference(&[&a, &b], &g, |t| silu_mul(t[0], t[1]).unwrap());
    let args = s(&[a.elem_count() as f64]);
    let got = train_op(&exe, &tmp, "silu_mul_fwd", &args, &[("a", &a), ("b", &b)], &[("y", &dims)]);
    close("silu_mul", &got[0], &y);
    let got = train_op(
        &exe,
        &tmp,
        "silu_mul_bwd",
        &args,
        &[("a", &a), ("b", &b), ("g", &g)],
        &[("da", &dims), ("db", &dims)],
    );
    close("silu_mul da", &got[0], &d[0]);
    close("silu_mul db", &got[1], &d[1]);

    // The causal conv: more channels than a block's threads, more rows than a block's 64 (crossing a sequence's
    // end), taps of 4.
    let (bs, t, c, k) = (2, 70, 130, 4);
    let (x, taps, g) = (n(&[bs, t, c], 1.0), n(&[k, c], 0.5), n(&[bs, t, c], 1.0));
    let (y, d) = reference(&[&x, &taps], &g, |ts| conv_silu(ts[0], ts[1]).unwrap());
    let args = s(&[bs as f64, t as f64, c as f64, k as f64]);
    let got = train_op(&exe, &tmp, "conv_silu_fwd", &args, &[("x", &x), ("taps", &taps)], &[("y", &[bs, t, c])]);
    close("conv_silu", &got[0], &y);
    let outs: [(&str, &[usize]); 2] = [("dx", &[bs, t, c]), ("dtaps", &[k, c])];
    let got = train_op(&exe, &tmp, "conv_silu_bwd", &args, &[("x", &x), ("taps", &taps), ("g", &g)], &outs);
    close("conv_silu dx", &got[0], &d[0]);
    close("conv_silu dtaps", &got[1], &d[1]);

    // The rotary embedding with a pass-through tail, per-row and shared tables; its transpose is the gradient.
    let (bs, h, t, d, rot) = (2, 3, 5, 10, 6);
    let (x, g) = (n(&[bs, h, t, d], 1.0), n(&[bs, h, t, d], 1.0));
    for tb in [bs, 1] {
        let angles = n(&[tb, t, rot], 2.0);
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let (y, dx) = reference(&[&x], &g, |ts| rope(ts[0], &cos, &sin).unwrap());
        let args = |tr: f64| s(&[bs as f64, h as f64, t as f64, d as f64, rot as f64, tb as f64, tr]);
        let tables = [("cos", &cos), ("sin", &sin)];
        let got =
            train_op(&exe, &tmp, "rope", &args(0.0), &[("x", &x), tables[0], tables[1]], &[("y", &[bs, h, t, d])]);
        close(&format!("rope (tables of {tb})"), &got[0], &y);
        let got =
            train_op(&exe, &tmp, "rope", &args(1.0), &[("x", &g), tables[0], tables[1]], &[("y", &[bs, h, t, d])]);
        close(&format!("rope gradient (tables of {tb})"), &got[0], &dx[0]);
    }

    // The delta rule's input packing: key heads shared by two value heads, and one each; head sizes past a warp.
    for h in [PackHeads { n_k: 2, n_v: 4, d_k: 40, d_v: 36 }, PackHeads { n_k: 3, n_v: 3, d_k: 16, d_v: 8 }] {
        let (bs, t) = (2, 5);
        let ch = 2 * h.n_k * h.d_k + h.n_v * h.d_v;
        let width = 2 * h.d_k + h.d_v + 2;
        let (conv, g, beta) = (n(&[bs, t, ch], 1.0), n(&[bs, t, h.n_v], 1.0), n(&[bs, t, h.n_v], 1.0));
        let dp = n(&[bs, h.n_v, t, width], 1.0);
        let (y, d) = reference(&[&conv, &g, &beta], &dp, |ts| delta_pack(ts[0], ts[1], ts[2], h).unwrap());
        let args = s(&[bs, t, h.n_k, h.n_v, h.d_k, h.d_v].map(|v| v as f64));
        let ins = [("conv", &conv), ("g", &g), ("beta", &beta)];
        let got = train_op(&exe, &tmp, "delta_pack_fwd", &args, &ins, &[("out", &[bs, h.n_v, t, width])]);
        close(&format!("delta_pack {h:?}"), &got[0], &y);
        let outs: [(&str, &[usize]); 3] =
            [("dconv", &[bs, t, ch]), ("dg", &[bs, t, h.n_v]), ("dbeta", &[bs, t, h.n_v])];
        let got = train_op(&exe, &tmp, "delta_pack_bwd", &args, &[("conv", &conv), ("dp", &dp)], &outs);
        for (i, part) in ["dconv", "dg", "dbeta"].iter().enumerate() {
            close(&format!("delta_pack {part} {h:?}"), &got[i], &d[i]);
        }
    }

    // AdamW in place, with and without the clipping factor and the decay, over more elements than one block
    // covers: the kernels round every operation as the CPU op does, so the two agree to the last bit.
    let numel = 700;
    let (p0, g) = (n(&[numel], 1.0).to_dtype(DType::F32).unwrap(), n(&[numel], 0.5).to_dtype(DType::F32).unwrap());
    let mv0 =
        Tensor::cat(&[n(&[numel], 0.1), n(&[numel], 0.1).sqr().unwrap()], 0).unwrap().to_dtype(DType::F32).unwrap();
    for (keep, scale) in [(1.0, 1.0), (1.0 - 1e-3 * 0.1, 0.37)] {
        let st = AdamWStep::new(0.9, 0.999, 1e-8, 3, 1e-3, keep, scale);
        let (p, mv) = (p0.copy().unwrap(), mv0.copy().unwrap());
        adamw_update(&p, &mv, &g, &st).unwrap();
        let args = s(&[
            numel as f64,
            st.beta1,
            1.0 - st.beta1,
            st.beta2,
            1.0 - st.beta2,
            scale,
            (scale != 1.0) as u8 as f64,
            keep,
            (keep != 1.0) as u8 as f64,
            st.lr,
            st.inv_bias1,
            st.inv_bias2,
            st.eps,
        ]);
        let outs: [(&str, &[usize]); 2] = [("mv_new", &[2 * numel]), ("p_new", &[numel])];
        let got = train_op(&exe, &tmp, "adamw", &args, &[("mv", &mv0), ("g", &g), ("p", &p0)], &outs);
        let exact = |name: &str, got: &Tensor, want: &Tensor| {
            let d: f64 =
                (got - want.to_dtype(DType::F64).unwrap()).unwrap().abs().unwrap().max(0).unwrap().to_scalar().unwrap();
            assert_eq!(d, 0.0, "AdamW {name} (keep {keep}, scale {scale}) differs from the CPU op by {d:e}");
        };
        exact("moments", &got[0], &mv);
        exact("parameter", &got[1], &p);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Values on the bf16 grid (so that the f32 reference reads what a bf16 kernel reads), as f32.
fn on_bf16_grid(dims: &[usize], std: f32) -> Tensor {
    let x = Tensor::randn(0f32, std, dims, &Device::Cpu).unwrap();
    x.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap()
}

/// Runs `decode_ops_emu` for `ty` (f32 or bf16).
fn decode_op(exe: &Path, dir: &Path, ty: &str, kernel: &str, args: &[String]) {
    let out = Command::new(exe).arg(dir).arg(ty).arg(kernel).args(args).output().unwrap();
    assert!(out.status.success(), "emulator {kernel} {ty}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_cuda_decode_kernels_compute_the_fused_ops() {
    let tmp = std::env::temp_dir().join(format!("sgvlm-cuda-emu-decode-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = emulator(&tmp, "decode_ops_emu");
    let s = |v: &[f64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let bf16 = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
    for (ty, tol) in [("f32", 1e-6), ("bf16", 1e-2)] {
        // The activations the CPU op gets: f32, or bf16 for the bf16 kernels (whose outputs are rounded once).
        let act = |t: &Tensor| if ty == "bf16" { bf16(t) } else { t.clone() };
        let check = |name: &str, got: Tensor, want: &Tensor| {
            let e = rel_err(&got.to_dtype(DType::F64).unwrap(), &want.to_dtype(DType::F64).unwrap());
            assert!(e < tol, "{name} ({ty}) differs by {e:e}");
        };

        // The residual add and RMSNorm: rows longer than the block (strided), with and without the residual.
        let (rows, n) = (3, 600);
        let (x, h, w) = (on_bf16_grid(&[rows, n], 1.0), on_bf16_grid(&[rows, n], 1.0), on_bf16_grid(&[n], 0.3));
        for (name, t) in [("x", &x), ("h", &h), ("w", &w)] {
            write(&tmp.join(format!("{name}.bin")), t);
        }
        for has_h in [1.0, 0.0] {
            decode_op(&exe, &tmp, ty, "add_rms_norm", &s(&[rows as f64, n as f64, 1e-6, has_h]));
            let (sum, y) = add_rms_norm(&act(&x), (has_h > 0.0).then(|| act(&h)).as_ref(), &w, 1e-6).unwrap();
            check("add_rms_norm y", read(&tmp.join("y.bin"), &[rows, n]), &y);
            if let Some(sum) = sum {
                check("add_rms_norm sum", read(&tmp.join("sum.bin"), &[rows, n]), &sum);
            }
        }

        // The gated norm: two sequences, three value heads of 40, z at column 7 of a projection 150 wide.
        let (b, nv, dv, width, z_at) = (2, 3, 40, 150, 7);
        let (core, proj, wg) =
            (on_bf16_grid(&[b, 1, nv, dv], 1.0), on_bf16_grid(&[b, 1, width], 1.5), on_bf16_grid(&[dv], 0.5));
        write(&tmp.join("core.bin"), &core);
        write(&tmp.join("proj.bin"), &proj);
        write(&tmp.join("w.bin"), &wg);
        decode_op(&exe, &tmp, ty, "gated_norm", &s(&[b as f64, nv as f64, dv as f64, width as f64, z_at as f64, 1e-6]));
        let want = gated_rms_norm(&core, &act(&proj), z_at, &wg, 1e-6).unwrap();
        check("gated_norm", read(&tmp.join("y.bin"), &[b, 1, nv * dv]), &want);

        // silu(gate)·up over more elements than a block.
        let (rows, inter) = (3, 700);
        let gu = on_bf16_grid(&[rows, 2 * inter], 2.0);
        write(&tmp.join("gu.bin"), &gu);
        decode_op(&exe, &tmp, ty, "silu_mul_halves", &s(&[rows as f64, inter as f64]));
        check("silu_mul_halves", read(&tmp.join("y.bin"), &[rows, inter]), &silu_mul_halves(&act(&gu)).unwrap());

        // The Gated DeltaNet step from a fused projection [qkv | z | b | a | 5 spare columns], the window and state
        // updated in place: two value heads per key head (the conv, then the state step), and one (both in one
        // launch, as in Qwen3.5-0.8B).
        for heads in [DeltaHeads { n_k: 2, n_v: 4, d_k: 16, d_v: 8 }, DeltaHeads { n_k: 3, n_v: 3, d_k: 16, d_v: 40 }] {
            let (b, kern) = (2, 4);
            let c = 2 * heads.n_k * heads.d_k + heads.n_v * heads.d_v;
            let cols =
                ProjColumns { mixed: 0, z: c, b: c + heads.n_v * heads.d_v, a: c + heads.n_v * heads.d_v + heads.n_v };
            let width = cols.a + heads.n_v + 5;
            let proj = on_bf16_grid(&[b, 1, width], 1.0);
            let conv = on_bf16_grid(&[b, kern - 1, c], 1.0);
            let state = on_bf16_grid(&[b, heads.n_v, heads.d_k, heads.d_v], 0.3);
            let (taps, dt_bias, a_log) =
                (on_bf16_grid(&[c, kern], 0.5), on_bf16_grid(&[heads.n_v], 0.5), on_bf16_grid(&[heads.n_v], 0.5));
            for (name, t) in [
                ("proj", &proj),
                ("conv", &conv),
                ("state", &state),
                ("taps", &taps),
                ("dt_bias", &dt_bias),
                ("a_log", &a_log),
            ] {
                write(&tmp.join(format!("{name}.bin")), t);
            }
            let dims = [b, heads.n_k, heads.n_v, heads.d_k, heads.d_v, kern, width, cols.mixed, cols.b, cols.a];
            decode_op(&exe, &tmp, ty, "delta_proj", &s(&dims.map(|d| d as f64)));
            let (conv_ref, state_ref) = (conv.copy().unwrap(), state.copy().unwrap());
            // The f32 projection holds the bf16 kernel's input exactly (the CPU op would round its output to bf16).
            let step = ProjStep {
                proj: &proj,
                cols,
                conv: &conv_ref,
                state: &state_ref,
                taps: &taps,
                dt_bias: &dt_bias,
                a_log: &a_log,
            };
            let out = delta_decode_proj_into(step, heads).unwrap();
            let exact = |name: &str, got: Tensor, want: &Tensor| {
                let e = rel_err(&got, &want.to_dtype(DType::F64).unwrap());
                assert!(e < 1e-5, "{name} ({ty}, {heads:?}) differs by {e:e}");
            };
            exact("delta step output", read(&tmp.join("out.bin"), &[b, 1, heads.n_v, heads.d_v]), &out);
            exact("delta step window", read(&tmp.join("conv_new.bin"), &[b, kern - 1, c]), &conv_ref);
            exact("delta step state", read(&tmp.join("state_new.bin"), state_ref.dims()), &state_ref);
            assert!(
                rel_err(&conv_ref.to_dtype(DType::F64).unwrap(), &conv.to_dtype(DType::F64).unwrap()) > 0.1,
                "the window moved"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_cuda_attention_decode_kernels_compute_the_fused_ops() {
    let tmp = std::env::temp_dir().join(format!("sgvlm-cuda-emu-attn-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = emulator(&tmp, "decode_ops_emu");
    // Four query heads over two key/value heads of 40 features, 10 of them rotated; 37 KV slots, this step's at 20;
    // the first sequence has 3 slots of left padding.
    let heads = AttnHeads { n_h: 4, n_kv: 2, d: 40 };
    let (b, rot, cap, slot) = (2, 10, 37, 20);
    let width = 2 * heads.n_h * heads.d + 2 * heads.n_kv * heads.d + 3;
    let all = on_bf16_grid(&[b, 1, width], 1.0);
    let (qn, kn) = (on_bf16_grid(&[heads.d], 0.3).affine(1.0, 1.0).unwrap(), on_bf16_grid(&[heads.d], 0.3));
    let angles = on_bf16_grid(&[b, 1, rot], 2.0);
    let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
    let kbuf = on_bf16_grid(&[b, heads.n_kv, cap, heads.d], 1.0);
    let vbuf = on_bf16_grid(&[b, heads.n_kv, cap, heads.d], 1.0);
    let hidden: Vec<f32> = (0..b * cap)
        .map(|i| {
            let (row, j) = (i / cap, i % cap);
            if j > slot || (row == 0 && j < 3) {
                -1e30
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(hidden, (b, 1, 1, cap), &Device::Cpu).unwrap();
    for (name, t) in [
        ("all", &all),
        ("q_norm", &qn),
        ("k_norm", &kn),
        ("cos", &cos),
        ("sin", &sin),
        ("kbuf", &kbuf),
        ("vbuf", &vbuf),
        ("mask", &mask),
    ] {
        write(&tmp.join(format!("{name}.bin")), t);
    }
    let slot_index = Tensor::full(slot as u32, (b, heads.n_kv, 1, heads.d), &Device::Cpu).unwrap();
    for (ty, tol) in [("f32", 1e-5), ("bf16", 1e-2)] {
        let dt = if ty == "bf16" { DType::BF16 } else { DType::F32 };
        let args = [b, heads.n_h, heads.n_kv, heads.d, rot, cap, slot, width].map(|x| x.to_string());
        let mut args = args.to_vec();
        args.push("1e-6".into());
        decode_op(&exe, &tmp, ty, "attn", &args);
        let (kb, vb) = (kbuf.to_dtype(dt).unwrap().copy().unwrap(), vbuf.to_dtype(dt).unwrap().copy().unwrap());
        let a = all.to_dtype(dt).unwrap();
        let q = attn_prep(&a, heads, &qn, &kn, (&cos, &sin), (&kb, &vb), &slot_index, 1e-6).unwrap();
        for (name, got, want) in [("q", "q", &q), ("keys", "kbuf_new", &kb), ("values", "vbuf_new", &vb)] {
            let e = rel_err(&read(&tmp.join(format!("{got}.bin")), want.dims()), &want.to_dtype(DType::F64).unwrap());
            assert!(e < tol, "attention {name} ({ty}) differs by {e:e}");
        }
        // The kernels between cuBLAS's two products: the scaled, masked softmax of the scores [B, n_kv, rep, cap],
        // and the output gate.
        let scores = on_bf16_grid(&[b, heads.n_kv, heads.n_h / heads.n_kv, cap], 3.0);
        write(&tmp.join("scores.bin"), &scores);
        let rows = b * heads.n_h;
        let scale = 0.3;
        decode_op(
            &exe,
            &tmp,
            ty,
            "masked_softmax",
            &[rows, cap, heads.n_h]
                .map(|x| x.to_string())
                .iter()
                .cloned()
                .chain(["0.3".to_string()])
                .collect::<Vec<_>>(),
        );
        let want = candle_nn::ops::softmax_last_dim(
            &(scores.to_dtype(dt).unwrap().to_dtype(DType::F32).unwrap() * scale)
                .unwrap()
                .broadcast_add(&mask)
                .unwrap(),
        )
        .unwrap();
        let e = rel_err(&read(&tmp.join("probs.bin"), want.dims()), &want.to_dtype(DType::F64).unwrap());
        assert!(e < tol, "masked softmax ({ty}) differs by {e:e}");
        let o = on_bf16_grid(&[b, 1, heads.n_h * heads.d], 1.0);
        write(&tmp.join("o.bin"), &o);
        decode_op(&exe, &tmp, ty, "gate_mul", &[b, heads.n_h, heads.d, width].map(|x| x.to_string()));
        let gate = all.narrow(2, 0, 2 * heads.n_h * heads.d).unwrap().reshape((b, heads.n_h, 2 * heads.d)).unwrap();
        let gate = gate.narrow(2, heads.d, heads.d).unwrap().reshape((b, 1, heads.n_h * heads.d)).unwrap();
        let want = o.mul(&candle_nn::ops::sigmoid(&gate).unwrap()).unwrap();
        let e = rel_err(&read(&tmp.join("y.bin"), want.dims()), &want.to_dtype(DType::F64).unwrap());
        assert!(e < tol, "output gate ({ty}) differs by {e:e}");
        // attn_decode (the CPU's composition) is those pieces around the two products.
        let out = attn_decode(&q, (&kb, &vb), &mask, &a, heads).unwrap();
        assert_eq!(out.dims(), [b, 1, heads.n_h * heads.d]);
        // The step's keys and values went to its slot and nowhere else.
        let moved = (kb.to_dtype(DType::F32).unwrap() - &kbuf).unwrap().abs().unwrap().sum(3).unwrap();
        let moved: Vec<Vec<Vec<f32>>> = moved.to_vec3().unwrap();
        for (j, m) in moved[0][0].iter().enumerate() {
            assert_eq!(*m > 0.0, j == slot, "slot {j}");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

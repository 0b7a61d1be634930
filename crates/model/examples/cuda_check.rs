//! Cheap check of the CUDA path (run on the GPU machine before any benchmark). First our own kernels, each alone:
//! the gated delta rule's at the head sizes of the demo and of Qwen3.5-0.8B (`delta_rule_*`: the training node's
//! output and the gradients of its five inputs, and the inference form from a state, output and final state), then
//! the CUDA twins of the training kernels (`kernel_*`: normalisation, softmax, `silu(a)·b`, the causal conv, the
//! delta rule's packing, the rotary embedding; value and input gradients), all against the CPU nodes in f64, and the
//! fused decode ops (`decode_op_*`: the residual add with the RMSNorm, `silu(gate)·up`, the Gated DeltaNet step read
//! from a fused projection and its gated norm, a full-attention step's two kernels; f32 and bf16) against the same
//! ops on the CPU. After the delta rule's checks, its kernels are timed alone at the benchmarks' shapes
//! (`{"time": "delta_rule_*", "seconds": ..}` lines: the 0.8B's prefill at batch 1 and 64, the training step's
//! forward and backward). A kernel
//! that faults ends the process, so these come first and the lines printed before it name the family
//! (`scripts/cuda_verdicts.sh` turns it off for the runs after). Then the tiny model on random weights: one
//! image+text forward, cached decode steps and one backward pass, on CUDA (f32 and bf16) against the CPU in f32. The
//! bf16 backward pass is sgvlm-train's bf16 compute: the model over bf16 casts of f32 variables, gradients arriving
//! in f32 on the variables. `SGVLM_CUDA_DELTA_RULE=0` / `SGVLM_CUDA_KERNELS=0` check candle's compositions instead.
//!
//! ```sh
//! cargo run -p sgvlm-model --features cuda --example cuda_check      # or dist/cuda/cuda_check (scripts/build_cuda.sh)
//! ```
//! Prints one JSON line per comparison with the relative error `‖cuda − cpu‖ / ‖cpu‖` and whether it is within the
//! dtype's tolerance (f32: 1e-4, gradients 1e-3; bf16: 5e-2), then a summary line; exits 1 when a
//! check fails or CUDA is missing.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use sgvlm_model::{checkpoint, Cache, Config, ImageInput, ModelInput, Qwen35};

type Res<T> = Result<T, Box<dyn std::error::Error>>;
/// A kernel's worst relative error against the CPU and the seconds its check took.
type Checked = Res<(f64, f64)>;

fn rel_err(a: &Tensor, b: &Tensor) -> Res<f64> {
    let a = a.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let b = b.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let num = (&a - &b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f64>()?;
    let den = b.sqr()?.sum_all()?.sqrt()?.to_scalar::<f64>()?;
    Ok(if num.is_nan() { f64::INFINITY } else { num / den.max(1e-30) })
}

struct Inputs {
    ids: Tensor,
    pixels: Tensor,
    grids: Vec<[usize; 3]>,
}

fn inputs(cfg: &Config, dev: &Device) -> Res<Inputs> {
    let grid = [1, 4, 6];
    let mut row: Vec<u32> = (0..5).map(|i| 100 + 17 * i).collect();
    row.push(cfg.vision_start_token_id);
    row.extend(std::iter::repeat_n(cfg.image_token_id, 6));
    row.push(cfg.vision_end_token_id);
    row.extend((0..77).map(|i| 300 + (i * 29) % 1500));
    let len = row.len();
    let mut ids = row.clone();
    ids.extend(row.iter().map(|&t| if t < 2000 { (t + 11) % 2000 } else { t }));
    let vc = &cfg.vision_config;
    let patch_dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size * vc.patch_size;
    let pixels = Tensor::randn(0f32, 1.0, (2 * 24, patch_dim), &Device::Cpu)?.to_device(dev)?;
    Ok(Inputs { ids: Tensor::from_vec(ids, (2, len), dev)?, pixels, grids: vec![grid; 2] })
}

/// Logits of a full forward, then of prefill + 4 cached one-token steps (the recurrent delta rule and KV cache).
fn run(model: &Qwen35, inp: &Inputs) -> Res<(Tensor, Tensor)> {
    let images = Some(ImageInput { pixel_values: &inp.pixels, grids: &inp.grids });
    let full = model.forward(&ModelInput { input_ids: Some(&inp.ids), images, ..Default::default() }, None)?.logits;
    let len = inp.ids.dim(1)?;
    let mut cache = Cache::new(&model.config);
    let prefix = inp.ids.narrow(1, 0, len - 4)?;
    let mut steps = vec![
        model.forward(&ModelInput { input_ids: Some(&prefix), images, ..Default::default() }, Some(&mut cache))?.logits,
    ];
    for i in len - 4..len {
        let tok = inp.ids.narrow(1, i, 1)?;
        steps
            .push(model.forward(&ModelInput { input_ids: Some(&tok), ..Default::default() }, Some(&mut cache))?.logits);
    }
    Ok((full, Tensor::cat(&steps, 1)?))
}

/// Cross-entropy loss and the gradient of a few weights, with every weight an f32 variable and the model computing in
/// `dtype` over casts of them (the training path).
fn grads(
    cfg: &Config,
    weights: &HashMap<String, Tensor>,
    inp: &Inputs,
    dev: &Device,
    dtype: DType,
) -> Res<Vec<(String, Tensor)>> {
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| "varmap lock")?;
        for (name, t) in weights {
            data.insert(name.clone(), Var::from_tensor(&t.to_device(dev)?)?);
        }
    }
    let views: HashMap<String, Tensor> = {
        let data = varmap.data().lock().map_err(|_| "varmap lock")?;
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    };
    let model = Qwen35::new(cfg, VarBuilder::from_tensors(views, dtype, dev))?;
    let images = Some(ImageInput { pixel_values: &inp.pixels, grids: &inp.grids });
    let logits = model.forward(&ModelInput { input_ids: Some(&inp.ids), images, ..Default::default() }, None)?.logits;
    let logits = logits.to_dtype(DType::F32)?;
    let (b, t, v) = logits.dims3()?;
    let pred = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?;
    let target = inp.ids.narrow(1, 1, t - 1)?.flatten_all()?;
    let loss = candle_nn::loss::cross_entropy(&pred, &target)?;
    let g = loss.backward()?;
    let data = varmap.data().lock().map_err(|_| "varmap lock")?;
    let mut names: Vec<&String> = data.keys().filter(|n| n.contains("layers.0.") || n.contains("blocks.0.")).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let var = &data[name];
        let grad = g.get(var.as_tensor()).ok_or_else(|| format!("no gradient reached {name}"))?;
        out.push((name.clone(), grad.clone()));
    }
    Ok(out)
}

/// `op` at `xs` (each cast to `dtype`, moved to `dev` and made a variable) and the gradient of each input for a fixed
/// output gradient (`sin` of a running count, the same on every device).
fn value_and_grads(
    xs: &[Tensor],
    dev: &Device,
    dtype: DType,
    op: impl Fn(&[&Tensor]) -> sgvlm_model::Result<Tensor>,
) -> Res<(Tensor, Vec<Tensor>)> {
    let vars: Vec<Var> =
        xs.iter().map(|x| Var::from_tensor(&x.to_dtype(dtype)?.to_device(dev)?)).collect::<Result<_, _>>()?;
    let ts: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
    let y = op(&ts)?;
    let seed = Tensor::ones(y.dims(), DType::F64, &Device::Cpu)?.cumsum(y.rank() - 1)?.sin()?.to_device(dev)?;
    let grads = (y.to_dtype(DType::F64)? * seed)?.sum_all()?.backward()?;
    let gs = vars.iter().map(|v| grads.get(v.as_tensor()).cloned().ok_or("no gradient")).collect::<Result<_, _>>()?;
    Ok((y, gs))
}

/// The gated delta rule on CUDA (our kernels, when `cuda_supported`; the chunked form otherwise) against the CPU's
/// f64 node: `(check, relative error, tolerance)` for the training node's output and input gradients and for the
/// inference form from a random state. 3 heads of 2 sequences, 77 tokens (not a whole number of the backward's
/// 32-token blocks).
/// A check that returned an error (rather than faulting): one failed line with the message; the rest go on.
fn failed(check: &str, e: &dyn std::fmt::Display) {
    println!("{}", serde_json::json!({"check": check, "ok": false, "error": e.to_string()}));
}

/// A family of checks timed together: each `(name, error, tolerance)` goes to `report` as `line(name)`, or the
/// family's error is one failed `family` line. Whether the family ran.
fn check_family(
    report: &mut dyn FnMut(&str, f64, f64, f64),
    family: &str,
    line: impl Fn(&str) -> String,
    checks: impl FnOnce() -> Res<Vec<(String, f64, f64)>>,
) -> bool {
    let t0 = Instant::now();
    match checks() {
        Ok(errs) => {
            let secs = t0.elapsed().as_secs_f64();
            for (name, err, tol) in errs {
                report(&line(&name), err, tol, secs);
            }
            true
        }
        Err(e) => {
            failed(family, &e);
            false
        }
    }
}

fn delta_rule_errors(dk: usize, dv: usize, cuda: &Device) -> Res<Vec<(String, f64, f64)>> {
    use sgvlm_model::text::delta_rule;
    let cpu = Device::Cpu;
    let (b, t, h) = (2, 77, 3);
    let mk = |dims: &[usize], std: f64| Tensor::randn(0f64, std, dims, &cpu);
    let ins = [
        mk(&[b, t, h, dk], 1.0)?,
        mk(&[b, t, h, dk], 1.0)?,
        mk(&[b, t, h, dv], 1.0)?,
        (mk(&[b, t, h], 0.5)? - 1.0)?.exp()?.neg()?,
        candle_nn::ops::sigmoid(&mk(&[b, t, h], 1.0)?)?,
    ];
    let fused = |t: &[&Tensor]| delta_rule::fused(t[0], t[1], t[2], t[3], t[4]);
    let (o_ref, g_ref) = value_and_grads(&ins, &cpu, DType::F64, fused)?;
    let (o, gs) = value_and_grads(&ins, cuda, DType::F32, fused)?;
    let mut errs = vec![("forward".to_string(), rel_err(&o, &o_ref)?, 1e-4)];
    for (name, (a, r)) in ["dq", "dk", "dv", "dg", "dbeta"].iter().zip(gs.iter().zip(&g_ref)) {
        errs.push((format!("grad_{name}"), rel_err(a, r)?, 1e-3));
    }
    let init = mk(&[b, h, dk, dv], 0.3)?;
    let [q, k, v, g, beta] = ins.clone();
    let (o_ref, s_ref) = delta_rule::loops(&q, &k, &v, &g, &beta, Some(&init))?;
    let on = |x: &Tensor| x.to_dtype(DType::F32)?.to_device(cuda);
    let (o, s) = delta_rule::loops(&on(&q)?, &on(&k)?, &on(&v)?, &on(&g)?, &on(&beta)?, Some(&on(&init)?))?;
    errs.push(("prefill_out".into(), rel_err(&o, &o_ref)?, 1e-4));
    errs.push(("prefill_state".into(), rel_err(&s, &s_ref)?, 1e-4));
    Ok(errs)
}

/// Seconds of the gated delta rule's kernels alone, on packed rows of the 0.8B's heads (16 of d_k = d_v = 128), at
/// the shapes the benchmarks run: the prefill of one and of 64 prompts of 1,010 tokens (the inference form, from a
/// zero state with the final state), and the training step's 4 × 1,300 tokens (forward, then forward and backward).
/// The median of three runs after a warm-up, each ended by a synchronisation. Random rows: the timing, not the
/// values, is what counts here (the checks above compared the values).
fn delta_rule_timings(cuda: &Device) -> Res<Vec<(String, f64)>> {
    use sgvlm_model::kernels::delta_rule::{gated_delta_rule_packed, gated_delta_rule_packed_with_state};
    let (h, dk, dv) = (16, 128, 128);
    let median = |f: &mut dyn FnMut() -> Res<()>| -> Res<f64> {
        f()?;
        cuda.synchronize()?;
        let mut times = Vec::new();
        for _ in 0..3 {
            let t0 = Instant::now();
            f()?;
            cuda.synchronize()?;
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        Ok(times[1])
    };
    let rows = |b: usize, t: usize| Tensor::randn(0f32, 0.1, (b, h, t, 2 * dk + dv + 2), cuda);
    let mut out = Vec::new();
    for (name, b, t) in [("prefill_b1", 1, 1010), ("prefill_b64", 64, 1010)] {
        let x = rows(b, t)?;
        out.push((
            name.to_string(),
            median(&mut || gated_delta_rule_packed_with_state(&x, dk, None).map(|_| ()).map_err(Into::into))?,
        ));
    }
    let x = Var::from_tensor(&rows(4, 1300)?)?;
    out.push((
        "train_forward".into(),
        median(&mut || gated_delta_rule_packed(x.as_tensor(), dk).map(|_| ()).map_err(Into::into))?,
    ));
    let seed = Tensor::randn(0f32, 1.0, (4, h, 1300, dv), cuda)?;
    out.push((
        "train_forward_backward".into(),
        median(&mut || {
            gated_delta_rule_packed(x.as_tensor(), dk)?.mul(&seed)?.sum_all()?.backward()?;
            Ok(())
        })?,
    ));
    Ok(out)
}

/// The training kernels' CUDA twins (`kernels::{normalize, rms_norm, softmax, silu_mul, conv_silu,
/// rope_on_device, delta_pack}` on f32 CUDA tensors) against their CPU nodes in f64: per kernel, the worst relative
/// error of the value and every input gradient, and the seconds it took (or the error the kernel returned).
fn train_op_errors(cuda: &Device) -> Res<Vec<(String, Checked)>> {
    use sgvlm_model::kernels;
    type Op = Box<dyn Fn(&[&Tensor], &Device) -> sgvlm_model::Result<Tensor>>;
    let cpu = Device::Cpu;
    let mk = |dims: &[usize], std: f64| Tensor::randn(0f64, std, dims, &cpu);
    let angles = mk(&[2, 5, 6], 2.0)?;
    let ops: Vec<(&str, Vec<Tensor>, Op)> = vec![
        ("normalize_rms", vec![mk(&[6, 300], 2.0)?], Box::new(|t, _| kernels::normalize(t[0], 1e-6, true))),
        ("normalize_l2", vec![mk(&[6, 128], 2.0)?], Box::new(|t, _| kernels::normalize(t[0], 1e-6, false))),
        (
            "rms_norm_1p",
            vec![mk(&[6, 300], 2.0)?, mk(&[300], 0.5)?],
            Box::new(|t, _| kernels::rms_norm(t[0], t[1], 1e-6, true)),
        ),
        ("softmax_causal", vec![mk(&[2, 3, 9, 13], 2.0)?], Box::new(|t, _| kernels::softmax(t[0], 0.3, Some(4)))),
        ("softmax", vec![mk(&[5, 400], 2.0)?], Box::new(|t, _| kernels::softmax(t[0], 1.0, None))),
        ("silu_mul", vec![mk(&[3, 700], 2.0)?, mk(&[3, 700], 1.0)?], Box::new(|t, _| kernels::silu_mul(t[0], t[1]))),
        (
            "conv_silu",
            vec![mk(&[2, 70, 130], 1.0)?, mk(&[4, 130], 0.5)?],
            Box::new(|t, _| kernels::conv_silu(t[0], t[1])),
        ),
        (
            "delta_pack",
            vec![mk(&[2, 9, 2 * 2 * 40 + 4 * 36], 1.0)?, mk(&[2, 9, 4], 1.0)?, mk(&[2, 9, 4], 1.0)?],
            Box::new(|t, _| {
                let heads = kernels::PackHeads { n_k: 2, n_v: 4, d_k: 40, d_v: 36 };
                kernels::delta_pack(t[0], t[1], t[2], heads)
            }),
        ),
        (
            "rope",
            vec![mk(&[2, 3, 5, 10], 1.0)?],
            Box::new(move |t, dev| {
                let table = |x: Tensor| x.to_dtype(t[0].dtype())?.to_device(dev);
                kernels::rope_on_device(t[0], &table(angles.cos()?)?, &table(angles.sin()?)?)
            }),
        ),
    ];
    let check = |xs: &[Tensor], op: &Op| -> Res<(f64, f64)> {
        let t0 = Instant::now();
        let (y_ref, g_ref) = value_and_grads(xs, &cpu, DType::F64, |t| op(t, &cpu))?;
        let (y, gs) = value_and_grads(xs, cuda, DType::F32, |t| op(t, cuda))?;
        let mut worst = rel_err(&y, &y_ref)?;
        for (a, r) in gs.iter().zip(&g_ref) {
            let e = rel_err(a, r)?;
            if e > worst || e.is_nan() {
                worst = e;
            }
        }
        Ok((worst, t0.elapsed().as_secs_f64()))
    };
    Ok(ops.into_iter().map(|(name, xs, op)| (name.to_string(), check(&xs, &op))).collect())
}

/// The fused decode ops ([`sgvlm_model::kernels::add_rms_norm`] and its siblings, the Gated DeltaNet step read from
/// a fused projection) on CUDA against the same ops on the CPU in f32, for f32 and bf16 activations (bf16 inputs on
/// the CPU too, so both read the same values). Each entry: name, worst relative error, tolerance.
/// `heads`: the Gated DeltaNet layout (with `n_k = n_v` its step is one kernel, else two); `tag` names it.
fn decode_op_errors(cuda: &Device, heads: sgvlm_model::kernels::DeltaHeads, tag: &str) -> Res<Vec<(String, f64, f64)>> {
    use sgvlm_model::kernels;
    let cpu = Device::Cpu;
    let mk = |dims: &[usize], std: f32| Tensor::randn(0f32, std, dims, &cpu);
    let c = 2 * heads.n_k * heads.d_k + heads.n_v * heads.d_v;
    let vd = heads.n_v * heads.d_v;
    let cols = kernels::ProjColumns { mixed: 0, z: c, b: c + vd, a: c + vd + heads.n_v };
    let (b, kern, width) = (3, 4, c + vd + 2 * heads.n_v);
    let (x, h, w) = (mk(&[b, 1, 1024], 1.0)?, mk(&[b, 1, 1024], 1.0)?, mk(&[1024], 0.3)?);
    let (gu, proj, wg) = (mk(&[b, 1, 2 * 3584], 2.0)?, mk(&[b, 1, width], 1.0)?, mk(&[heads.d_v], 0.5)?);
    let (conv, state) = (mk(&[b, kern - 1, c], 1.0)?, mk(&[b, heads.n_v, heads.d_k, heads.d_v], 0.1)?);
    let (taps, dt_bias, a_log) = (mk(&[c, kern], 0.5)?, mk(&[heads.n_v], 0.5)?, mk(&[heads.n_v], 0.5)?);
    let mut out = Vec::new();
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::BF16, 1e-2)] {
        let on = |t: &Tensor, dev: &Device| -> Res<Tensor> { Ok(t.to_dtype(dtype)?.to_device(dev)?) };
        let f32_on = |t: &Tensor, dev: &Device| -> Res<Tensor> { Ok(t.to_device(dev)?) };
        // Everything each op returns, on `dev`.
        let all = |dev: &Device| -> Res<Vec<Tensor>> {
            let (sum, y) = kernels::add_rms_norm(&on(&x, dev)?, Some(&on(&h, dev)?), &f32_on(&w, dev)?, 1e-6)?;
            let silu = kernels::silu_mul_halves(&on(&gu, dev)?)?;
            let p = on(&proj, dev)?;
            let (cv, st) = (f32_on(&conv, dev)?.copy()?, f32_on(&state, dev)?.copy()?);
            let (tp, dt, al) = (f32_on(&taps, dev)?, f32_on(&dt_bias, dev)?, f32_on(&a_log, dev)?);
            // The CPU's step reads an f32 projection holding the same values (its output would be rounded to bf16).
            let p_step = if dev.is_cpu() { p.to_dtype(DType::F32)? } else { p.clone() };
            let step =
                kernels::ProjStep { proj: &p_step, cols, conv: &cv, state: &st, taps: &tp, dt_bias: &dt, a_log: &al };
            let core = kernels::delta_decode_proj_into(step, heads)?;
            let gated = kernels::gated_rms_norm(&core, &p, cols.z, &f32_on(&wg, dev)?, 1e-6)?;
            Ok(vec![sum.ok_or("no sum")?, y, silu, core, cv, st, gated])
        };
        // A full-attention step: 8 query heads over 2 KV heads of 256 features (64 rotated), 300 slots, slot 120.
        let heads_a = kernels::AttnHeads { n_h: 8, n_kv: 2, d: 256 };
        let (cap, slot) = (300, 120u32);
        let width_a = 2 * heads_a.n_h * heads_a.d + 2 * heads_a.n_kv * heads_a.d;
        let proj_a = mk(&[b, 1, width_a], 1.0)?;
        let (qn, kn, angles) = (mk(&[heads_a.d], 0.3)?, mk(&[heads_a.d], 0.3)?, mk(&[b, 1, 64], 2.0)?);
        let kvs = mk(&[2, b, heads_a.n_kv, cap, heads_a.d], 1.0)?;
        let slots = Tensor::arange(0u32, cap as u32, &cpu)?.reshape((1, 1, 1, cap))?;
        let mask = (slots.broadcast_gt(&Tensor::new(&[slot], &cpu)?)?.to_dtype(DType::F32)? * -1e30)?
            .broadcast_as((b, 1, 1, cap))?
            .contiguous()?;
        let attention = |dev: &Device| -> Res<Vec<Tensor>> {
            let (kb, vb) = (on(&kvs.get(0)?, dev)?.copy()?, on(&kvs.get(1)?, dev)?.copy()?);
            let a = on(&proj_a, dev)?;
            let tables = (f32_on(&angles.cos()?, dev)?, f32_on(&angles.sin()?, dev)?);
            let index = Tensor::full(slot, (b, heads_a.n_kv, 1, heads_a.d), dev)?;
            let (qn, kn) = (f32_on(&qn, dev)?, f32_on(&kn, dev)?);
            let q = kernels::attn_prep(&a, heads_a, &qn, &kn, (&tables.0, &tables.1), (&kb, &vb), &index, 1e-6)?;
            let out = kernels::attn_decode(&q, (&kb, &vb), &f32_on(&mask, dev)?, &a, heads_a)?;
            Ok(vec![q, kb, vb, out])
        };
        let (want_a, got_a) = (attention(&cpu)?, attention(cuda)?);
        for ((name, g), w) in ["attn_q", "attn_keys", "attn_values", "attn_out"].iter().zip(&got_a).zip(&want_a) {
            out.push((format!("{name}_{tag}_{dtype:?}"), rel_err(g, w)?, tol));
        }
        let (want, got) = (all(&cpu)?, all(cuda)?);
        let names = [
            "add_rms_norm_sum",
            "add_rms_norm",
            "silu_mul_halves",
            "delta_proj_out",
            "delta_proj_window",
            "delta_proj_state",
            "gated_norm",
        ];
        for ((name, g), w) in names.iter().zip(&got).zip(&want) {
            // The delta step is f32 after reading its inputs; the gated norm reads its f32 output.
            let t = if name.starts_with("delta") { 1e-5 } else { tol };
            out.push((format!("{name}_{tag}_{dtype:?}"), rel_err(g, w)?, t));
        }
    }
    Ok(out)
}

fn main() -> Res<()> {
    sgvlm_model::ops::init_cpu_threads();
    let cuda = match sgvlm_model::cuda::open(0) {
        Ok(d) => d,
        Err(e) => {
            println!("{}", serde_json::json!({"check": "cuda_device", "ok": false, "error": e.to_string()}));
            std::process::exit(1);
        }
    };
    let cpu = Device::Cpu;
    let cfg = Config::tiny();
    let weights = checkpoint::random_weights(&cfg, 7, &cpu)?;
    let inp_cpu = inputs(&cfg, &cpu)?;
    let reference = run(&Qwen35::from_tensors(&cfg, weights.clone(), DType::F32, &cpu)?, &inp_cpu)?;
    let inp_gpu = Inputs {
        ids: inp_cpu.ids.to_device(&cuda)?,
        pixels: inp_cpu.pixels.to_device(&cuda)?,
        grids: inp_cpu.grids.clone(),
    };
    let mut all_ok = true;
    let mut report = |check: &str, err: f64, tol: f64, seconds: f64| {
        let ok = err <= tol;
        all_ok &= ok;
        println!(
            "{}",
            serde_json::json!({"check": check, "rel_err": err, "tolerance": tol, "ok": ok, "seconds": seconds})
        );
    };
    // Our kernels alone first: a kernel that faults takes the process with it, and the lines printed before say
    // which family it was (scripts/cuda_verdicts.sh reads them).
    // A kernel that returns an error (rather than faulting) fails its check with the message; the rest go on.
    let mut kernels_ok = true;
    for (dk, dv) in [(32, 32), (128, 128)] {
        kernels_ok &= check_family(
            &mut report,
            &format!("delta_rule_dk{dk}"),
            |name| format!("delta_rule_{name}_dk{dk}"),
            || delta_rule_errors(dk, dv, &cuda),
        );
    }
    if kernels_ok && sgvlm_model::kernels::delta_rule::cuda_supported(&cuda, 128, 128) {
        match delta_rule_timings(&cuda) {
            Ok(times) => {
                for (name, secs) in times {
                    println!("{}", serde_json::json!({"time": format!("delta_rule_{name}"), "seconds": secs}));
                }
            }
            Err(e) => failed("delta_rule_timing", &e),
        }
    }
    for (name, result) in train_op_errors(&cuda)? {
        match result {
            Ok((err, secs)) => report(&format!("kernel_{name}"), err, 1e-4, secs),
            Err(e) => {
                kernels_ok = false;
                failed(&format!("kernel_{name}"), &e);
            }
        }
    }
    // Two value heads per key head (the step's two kernels), and the 0.8B's one (one kernel).
    let layouts = [("shared_keys", 2, 4), ("q08", 16, 16)];
    for (tag, n_k, n_v) in layouts {
        let heads = sgvlm_model::kernels::DeltaHeads { n_k, n_v, d_k: 128, d_v: 128 };
        kernels_ok &= check_family(
            &mut report,
            &format!("decode_ops_{tag}"),
            |name| format!("decode_op_{name}"),
            || decode_op_errors(&cuda, heads, tag),
        );
    }
    for (dtype, tol) in [(DType::F32, 1e-4), (DType::BF16, 5e-2)] {
        let t0 = Instant::now();
        let model = Qwen35::from_tensors(&cfg, weights.clone(), dtype, &cuda)?;
        let (full, steps) = run(&model, &inp_gpu)?;
        let secs = t0.elapsed().as_secs_f64();
        report(&format!("forward_{dtype:?}"), rel_err(&full, &reference.0)?, tol, secs);
        report(&format!("cached_decode_{dtype:?}"), rel_err(&steps, &reference.1)?, tol, secs);
    }
    let g_cpu = grads(&cfg, &weights, &inp_cpu, &cpu, DType::F32)?;
    for (dtype, tol) in [(DType::F32, 1e-3), (DType::BF16, 5e-2)] {
        let t0 = Instant::now();
        let g_gpu = grads(&cfg, &weights, &inp_gpu, &cuda, dtype)?;
        let secs = t0.elapsed().as_secs_f64();
        let mut worst = 0f64;
        for ((name, a), (_, b)) in g_gpu.iter().zip(g_cpu.iter()) {
            let e = rel_err(a, b)?;
            if e > worst || e.is_nan() {
                worst = e;
            }
            if e > tol {
                println!(
                    "{}",
                    serde_json::json!({"check": "gradient", "dtype": format!("{dtype:?}"), "param": name, "rel_err": e})
                );
            }
        }
        report(&format!("gradients_{dtype:?} ({} params)", g_cpu.len()), worst, tol, secs);
    }
    all_ok &= kernels_ok;
    println!("{}", serde_json::json!({"check": "summary", "ok": all_ok}));
    if !all_ok {
        std::process::exit(1);
    }
    Ok(())
}

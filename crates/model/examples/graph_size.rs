//! Size of a training forward pass's gradient graph (a measuring tool, not a test): the text decoder of a preset
//! shape on random f32 weights, all of them variables, one forward over `BATCH × LEN` text tokens, then the nodes of
//! the graph (`Tensor::sorted_nodes`; on a GPU each is at least one kernel launch forward and one backward) and the
//! bytes of the distinct buffers their tensors hold (what autograd keeps alive until the backward pass, weights
//! excluded: a proxy for the activation memory of a training step), with the training kernels (`kernels`, the CPU's path and, through their CUDA twins, now the
//! GPU's) or candle's compositions (`composed`, the GPU's path before them).
//!
//! `cargo run --release -p sgvlm-model --example graph_size -- [tiny|qwen3.5-0.8b] [BATCH] [LEN] [kernels|composed]`

use candle_core::{CpuStorage, DType, Device, Storage, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use sgvlm_model::{checkpoint, Config, Qwen35};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let args: Vec<String> = std::env::args().collect();
    let cfg = match args.get(1).map(String::as_str) {
        Some("qwen3.5-0.8b") => Config::qwen35_0_8b(),
        _ => Config::tiny(),
    };
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let len: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(256);
    let composed = args.get(4).is_some_and(|s| s == "composed");
    sgvlm_model::kernels::set_enabled(!composed);
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| "varmap lock")?;
        for (name, t) in checkpoint::random_weights(&cfg, 0, &dev)? {
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    let model = Qwen35::new(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
    let vocab = cfg.text_config.vocab_size as u32;
    let ids: Vec<u32> = (0..batch * len).map(|i| (i as u32 * 7919 + 13) % vocab.min(50_000)).collect();
    let ids = Tensor::from_vec(ids, (batch, len), &dev)?;
    let t0 = std::time::Instant::now();
    let embeds = model.embed(&ids, None)?;
    let (positions, _) = sgvlm_model::positions::rope_index(&model.config, &ids.to_vec2::<u32>()?, &[])?;
    let hidden = model.text.forward(&embeds, &positions, None, false)?.last_hidden;
    let loss = hidden.sqr()?.mean_all()?;
    let secs = t0.elapsed().as_secs_f64();
    let nodes = loss.sorted_nodes();
    let params: std::collections::HashSet<_> = varmap.all_vars().iter().map(|v| v.as_tensor().id()).collect();
    // Distinct buffers only (views share their source's), counted at their full size; the weights' own buffers (and
    // views of them, such as transposes) are not activations.
    let mut seen = std::collections::HashSet::new();
    for v in varmap.all_vars() {
        let (storage, _) = v.as_tensor().storage_and_layout();
        seen.insert(&*storage as *const Storage as usize);
    }
    let mut act_bytes = 0usize;
    for t in nodes.iter().filter(|t| !params.contains(&t.id())) {
        let (storage, _) = t.storage_and_layout();
        if seen.insert(&*storage as *const Storage as usize) {
            act_bytes += match &*storage {
                Storage::Cpu(CpuStorage::F32(v)) => v.len() * 4,
                Storage::Cpu(CpuStorage::F64(v)) => v.len() * 8,
                Storage::Cpu(CpuStorage::BF16(v)) => v.len() * 2,
                Storage::Cpu(CpuStorage::U32(v)) => v.len() * 4,
                _ => t.elem_count() * t.dtype().size_in_bytes(),
            };
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "preset": args.get(1).map_or("tiny", String::as_str),
            "path": if composed { "composed" } else { "kernels" },
            "batch": batch, "len": len, "nodes": nodes.len(),
            "activation_gb": act_bytes as f64 / 1e9, "forward_s": secs,
        })
    );
    Ok(())
}

//! The native backend: the [`Engine`] behind the [`Backend`] trait, loaded from a Hugging Face model directory.
//!
//! ```text
//! let backend = NativeBackend::from_dir(Path::new("model"), NativeOptions::default())?;
//! let outputs = backend.generate(&requests);
//! ```
//! `from_dir` reads `config.json`, the safetensors weights (in `opts.dtype` on `opts.device`; on the CPU the decoder's
//! projections stay bf16 when the checkpoint stores them so, see [`NativeOptions::bf16_weights`]), `tokenizer.json`
//! and `preprocessor_config.json` (pixel bounds, patch/merge sizes, mean/std; Qwen3.5's defaults when absent).
//! Concurrent `generate` calls are serialised (one engine loop at a time); a caller that wants requests batched
//! together passes them in one call.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use candle_core::{DType, Device};
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::Qwen35;

use crate::backend::{Backend, BackendError, GenOutput, GenRequest};
use crate::engine::{Engine, EngineConfig};

/// How to load and run the model.
#[derive(Debug, Clone)]
pub struct NativeOptions {
    pub device: Device,
    pub dtype: DType,
    /// Most sequences decoding together.
    pub max_batch: usize,
    /// CPU only: keep the text decoder's projection weights and the LM head in bf16 while activations stay f32
    /// (`Qwen35::keep_bf16`): decoding reads half the weight bytes. `None` (the default): exactly when the
    /// checkpoint stores them in bf16, which loses nothing; `Some(true)` rounds f32 weights; `Some(false)` keeps f32.
    pub bf16_weights: Option<bool>,
}

impl Default for NativeOptions {
    fn default() -> Self {
        Self { device: Device::Cpu, dtype: DType::F32, max_batch: 16, bf16_weights: None }
    }
}

impl NativeOptions {
    /// The CPU with f32 activations (`cpu`: weights as stored, bf16 ones kept in bf16; `cpu-bf16`: weights in
    /// bf16; `cpu-f32`: weights in f32), or CUDA device 0 in bf16 (needs the `cuda` feature).
    pub fn for_device(name: &str) -> Result<Self, BackendError> {
        match name {
            "cpu" => Ok(Self::default()),
            "cpu-bf16" => Ok(Self { bf16_weights: Some(true), ..Self::default() }),
            "cpu-f32" => Ok(Self { bf16_weights: Some(false), ..Self::default() }),
            "cuda" => Ok(Self { device: cuda_device()?, dtype: DType::BF16, ..Self::default() }),
            other => Err(BackendError::BadRequest(format!(
                "unknown device `{other}` (expected cpu, cpu-bf16, cpu-f32 or cuda)"
            ))),
        }
    }
}

/// CUDA device 0, or a clear error when this build has no CUDA support or no GPU is found.
pub fn cuda_device() -> Result<Device, BackendError> {
    #[cfg(feature = "cuda")]
    {
        sgvlm_model::cuda::open(0).map_err(|e| BackendError::Engine(format!("cannot open CUDA device 0: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(BackendError::BadRequest(
            "this build has no CUDA support; rebuild with `--features cuda` (see scripts/build_cuda.sh)".into(),
        ))
    }
}

/// The native engine as a [`Backend`].
#[derive(Debug)]
pub struct NativeBackend {
    engine: Engine,
    name: String,
    lock: Mutex<()>,
}

impl NativeBackend {
    /// Loads a model directory (see the module docs).
    pub fn from_dir(dir: &Path, opts: NativeOptions) -> Result<Self, BackendError> {
        let f32_on_cpu = opts.device.is_cpu() && opts.dtype == DType::F32;
        if opts.bf16_weights == Some(true) && !f32_on_cpu {
            return Err(BackendError::BadRequest(
                "bf16 weights with f32 activations are a CPU mode for an f32 model; other devices run the whole model \
                 in bf16"
                    .into(),
            ));
        }
        // f32 on the CPU: the weight tensors stored in bf16 are read as bf16 (per tensor; an f32 checkpoint loads
        // all in f32), unless `cpu-f32` asks for every weight in f32.
        let loaded = if f32_on_cpu && opts.bf16_weights != Some(false) {
            Qwen35::from_dir_keeping_bf16(dir)
        } else {
            Qwen35::from_dir(dir, opts.dtype, &opts.device)
        };
        let mut model = loaded
            .map_err(|e| BackendError::Engine(format!("failed to load the model from {}: {e}", dir.display())))?;
        if opts.bf16_weights == Some(true) {
            model.keep_bf16().map_err(|e| BackendError::Engine(format!("failed to keep the weights in bf16: {e}")))?;
        }
        if fuse_for_decode(&opts.device) {
            // Fused decode steps (stacked projections, one kernel per norm): a third of the launches per step.
            let fused = model.text.fuse_for_decode();
            fused.map_err(|e| BackendError::Engine(format!("failed to arrange the weights for decoding: {e}")))?;
        }
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| BackendError::Engine(format!("failed to load the tokenizer {}: {e}", tok_path.display())))?;
        let processor = load_processor(&dir.join("preprocessor_config.json"))?;
        let name = dir.file_name().map_or_else(|| "native".to_string(), |n| n.to_string_lossy().into_owned());
        let mut b = Self::from_model(model, tokenizer, processor, opts)?;
        b.name = name;
        Ok(b)
    }

    /// Wraps a model already in memory (on `opts.device`; `opts.dtype` is not applied).
    pub fn from_model(
        model: Qwen35,
        tokenizer: Tokenizer,
        processor: ImageProcessor,
        opts: NativeOptions,
    ) -> Result<Self, BackendError> {
        let cfg = EngineConfig { max_batch: opts.max_batch.max(1), ..EngineConfig::default() };
        let engine = Engine::new(model, tokenizer, processor, cfg)?;
        Ok(Self { engine, name: "native".into(), lock: Mutex::new(()) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for callers that change its settings (the benchmark).
    pub fn into_engine(self) -> Engine {
        self.engine
    }
}

impl Backend for NativeBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<GenOutput, BackendError>> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let t = Instant::now();
        let outs = self.engine.generate(requests);
        let secs = t.elapsed().as_secs_f64();
        outs.into_iter()
            .map(|r| {
                r.map(|g| GenOutput {
                    prompt_tokens: g.prompt_ids.len(),
                    completion_tokens: g.tokens.len(),
                    text: g.text,
                    finish: g.finish,
                    batch_time_sec: secs,
                })
            })
            .collect()
    }
}

/// Reads `preprocessor_config.json` (`size.shortest_edge`/`longest_edge` or `min_pixels`/`max_pixels`,
/// `patch_size`, `merge_size`, `temporal_patch_size`, `image_mean`, `image_std`); a missing file gives Qwen3.5's
/// defaults.
pub fn load_processor(path: &Path) -> Result<ImageProcessor, BackendError> {
    let mut p = ImageProcessor::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
        Err(e) => return Err(BackendError::Engine(format!("failed to read {}: {e}", path.display()))),
    };
    let bad = |what: &str| BackendError::Engine(format!("{}: {what}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&format!("invalid JSON: {e}")))?;
    let num = |v: &serde_json::Value| v.as_u64().map(|x| x as usize);
    if let Some(x) = v.pointer("/size/shortest_edge").or(v.get("min_pixels")).and_then(num) {
        p.min_pixels = x;
    }
    if let Some(x) = v.pointer("/size/longest_edge").or(v.get("max_pixels")).and_then(num) {
        p.max_pixels = x;
    }
    for (key, slot) in [
        ("patch_size", &mut p.patch_size),
        ("merge_size", &mut p.merge_size),
        ("temporal_patch_size", &mut p.temporal_patch_size),
    ] {
        if let Some(x) = v.get(key).and_then(num) {
            if x == 0 {
                return Err(bad(&format!("{key} must be positive")));
            }
            *slot = x;
        }
    }
    for (key, slot) in [("image_mean", &mut p.mean), ("image_std", &mut p.std)] {
        if let Some(a) = v.get(key).and_then(|a| a.as_array()) {
            if a.len() != 3 || a.iter().any(|x| !x.is_number()) {
                return Err(bad(&format!("{key} must hold three numbers")));
            }
            for (s, x) in slot.iter_mut().zip(a) {
                *s = x.as_f64().unwrap_or(0.0) as f32;
            }
        }
    }
    if p.std.contains(&0.0) || p.min_pixels > p.max_pixels {
        return Err(bad("image_std must be non-zero and min_pixels ≤ max_pixels"));
    }
    Ok(p)
}

/// Whether a loaded model's decode steps are fused ([`sgvlm_model::text::TextModel::fuse_for_decode`]): on CUDA,
/// where a step's cost is its kernel launches; not on the CPU, where steps run eager by default and stacking would
/// copy memory-mapped weights to the heap. `SGVLM_FUSED=0` or `=1` decides instead (for comparisons).
pub fn fuse_for_decode(device: &Device) -> bool {
    match std::env::var("SGVLM_FUSED").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => device.is_cuda(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_bf16_keeps_f32_activations_and_refuses_a_bf16_model_before_loading() {
        let o = NativeOptions::for_device("cpu-bf16").unwrap();
        assert!(o.bf16_weights == Some(true) && o.device.is_cpu() && o.dtype == DType::F32);
        assert_eq!(NativeOptions::for_device("cpu").unwrap().bf16_weights, None);
        assert_eq!(NativeOptions::for_device("cpu-f32").unwrap().bf16_weights, Some(false));
        let bf16_model = NativeOptions { dtype: DType::BF16, ..o };
        let err = NativeBackend::from_dir(Path::new("/nonexistent/model"), bf16_model).unwrap_err();
        assert!(err.to_string().contains("CPU mode"), "{err}");
        let err = NativeOptions::for_device("tpu").unwrap_err();
        assert!(err.to_string().contains("cpu-bf16"), "{err}");
    }

    /// `cpu` keeps a bf16 checkpoint's projections in bf16 and an f32 checkpoint's in f32; `cpu-f32` and
    /// `cpu-bf16` override that.
    #[test]
    fn cpu_keeps_the_projections_in_the_dtype_the_checkpoint_stores() {
        use sgvlm_model::{checkpoint, Config};
        let cfg = Config::tiny();
        let weights = checkpoint::random_weights(&cfg, 1, &Device::Cpu).unwrap();
        let root = tempfile::tempdir().unwrap();
        for (stored, device, head) in [
            (DType::BF16, "cpu", DType::BF16),
            (DType::BF16, "cpu-f32", DType::F32),
            (DType::F32, "cpu", DType::F32),
            (DType::F32, "cpu-bf16", DType::BF16),
        ] {
            let dir = root.path().join(format!("{stored:?}"));
            if !dir.exists() {
                checkpoint::save(&dir, &cfg, &weights, stored).unwrap();
                checkpoint::write_companion_files(&dir, &cfg, 4096, 65_536).unwrap();
                checkpoint::write_tokenizer_files(&dir, sgvlm_model::tokenizer::TINY_TOKENIZER_JSON).unwrap();
            }
            let backend = NativeBackend::from_dir(&dir, NativeOptions::for_device(device).unwrap()).unwrap();
            let model = backend.engine().model();
            assert_eq!(model.lm_head.weight.dtype(), head, "{stored:?} checkpoint on {device}");
            assert_eq!(model.text.embed_tokens.dtype(), head, "the tied head shares the table");
            assert_eq!(model.text.dtype(), DType::F32, "activations stay f32");
        }
    }
}

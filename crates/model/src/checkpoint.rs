//! Hugging Face model directories: the tensor inventory a config implies, loading (single or sharded
//! safetensors, memory-mapped, bf16/f16/f32), saving, and seeded random initialisation.
//!
//! Loading checks every expected tensor's presence and shape before building the model, so a bad checkpoint fails
//! with the tensor's name and both shapes. Tensors the model does not use (such as the multi-token-prediction
//! head `mtp.*`) are ignored.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::config::{Config, LayerType};
use crate::error::{Error, Result};

/// How a tensor is initialised by [`random_weights`] (the rules of transformers' `_init_weights`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// N(0, 0.02).
    Normal,
    Zeros,
    Ones,
    /// `ln U(0.01, 16)` (Gated DeltaNet `A_log`).
    ALog,
}

/// One tensor the model reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// Every tensor of a `Qwen3_5ForConditionalGeneration` checkpoint for `cfg`, in a stable order.
pub fn tensor_specs(cfg: &Config) -> Vec<TensorSpec> {
    let mut out = Vec::new();
    let mut add =
        |name: String, shape: &[usize], init: Init| out.push(TensorSpec { name, shape: shape.to_vec(), init });
    let t = &cfg.text_config;
    let (h, i) = (t.hidden_size, t.intermediate_size);
    let lm = "model.language_model";
    add(format!("{lm}.embed_tokens.weight"), &[t.vocab_size, h], Init::Normal);
    add(format!("{lm}.norm.weight"), &[h], Init::Zeros);
    for (l, kind) in t.layer_types.iter().enumerate() {
        let p = format!("{lm}.layers.{l}");
        add(format!("{p}.input_layernorm.weight"), &[h], Init::Zeros);
        add(format!("{p}.post_attention_layernorm.weight"), &[h], Init::Zeros);
        add(format!("{p}.mlp.gate_proj.weight"), &[i, h], Init::Normal);
        add(format!("{p}.mlp.up_proj.weight"), &[i, h], Init::Normal);
        add(format!("{p}.mlp.down_proj.weight"), &[h, i], Init::Normal);
        match kind {
            LayerType::LinearAttention => {
                let (nk, nv, dk, dv) =
                    (t.linear_num_key_heads, t.linear_num_value_heads, t.linear_key_head_dim, t.linear_value_head_dim);
                let conv = 2 * nk * dk + nv * dv;
                let a = format!("{p}.linear_attn");
                add(format!("{a}.in_proj_qkv.weight"), &[conv, h], Init::Normal);
                add(format!("{a}.in_proj_z.weight"), &[nv * dv, h], Init::Normal);
                add(format!("{a}.in_proj_b.weight"), &[nv, h], Init::Normal);
                add(format!("{a}.in_proj_a.weight"), &[nv, h], Init::Normal);
                add(format!("{a}.conv1d.weight"), &[conv, 1, t.linear_conv_kernel_dim], Init::Normal);
                add(format!("{a}.dt_bias"), &[nv], Init::Ones);
                add(format!("{a}.A_log"), &[nv], Init::ALog);
                add(format!("{a}.norm.weight"), &[dv], Init::Ones);
                add(format!("{a}.out_proj.weight"), &[h, nv * dv], Init::Normal);
            }
            LayerType::FullAttention => {
                let (nh, nkv, d) = (t.num_attention_heads, t.num_key_value_heads, t.head_dim);
                let a = format!("{p}.self_attn");
                add(format!("{a}.q_proj.weight"), &[2 * nh * d, h], Init::Normal);
                add(format!("{a}.k_proj.weight"), &[nkv * d, h], Init::Normal);
                add(format!("{a}.v_proj.weight"), &[nkv * d, h], Init::Normal);
                add(format!("{a}.o_proj.weight"), &[h, nh * d], Init::Normal);
                add(format!("{a}.q_norm.weight"), &[d], Init::Zeros);
                add(format!("{a}.k_norm.weight"), &[d], Init::Zeros);
            }
        }
    }
    if !cfg.tie_word_embeddings {
        add("lm_head.weight".into(), &[t.vocab_size, h], Init::Normal);
    }
    let v = &cfg.vision_config;
    let vh = v.hidden_size;
    let merged = vh * v.spatial_merge_size * v.spatial_merge_size;
    let vis = "model.visual";
    add(
        format!("{vis}.patch_embed.proj.weight"),
        &[vh, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size],
        Init::Normal,
    );
    add(format!("{vis}.patch_embed.proj.bias"), &[vh], Init::Zeros);
    add(format!("{vis}.pos_embed.weight"), &[v.num_position_embeddings, vh], Init::Normal);
    for b in 0..v.depth {
        let p = format!("{vis}.blocks.{b}");
        for n in ["norm1", "norm2"] {
            add(format!("{p}.{n}.weight"), &[vh], Init::Ones);
            add(format!("{p}.{n}.bias"), &[vh], Init::Zeros);
        }
        add(format!("{p}.attn.qkv.weight"), &[3 * vh, vh], Init::Normal);
        add(format!("{p}.attn.qkv.bias"), &[3 * vh], Init::Zeros);
        add(format!("{p}.attn.proj.weight"), &[vh, vh], Init::Normal);
        add(format!("{p}.attn.proj.bias"), &[vh], Init::Zeros);
        add(format!("{p}.mlp.linear_fc1.weight"), &[v.intermediate_size, vh], Init::Normal);
        add(format!("{p}.mlp.linear_fc1.bias"), &[v.intermediate_size], Init::Zeros);
        add(format!("{p}.mlp.linear_fc2.weight"), &[vh, v.intermediate_size], Init::Normal);
        add(format!("{p}.mlp.linear_fc2.bias"), &[vh], Init::Zeros);
    }
    add(format!("{vis}.merger.norm.weight"), &[vh], Init::Ones);
    add(format!("{vis}.merger.norm.bias"), &[vh], Init::Zeros);
    add(format!("{vis}.merger.linear_fc1.weight"), &[merged, merged], Init::Normal);
    add(format!("{vis}.merger.linear_fc1.bias"), &[merged], Init::Zeros);
    add(format!("{vis}.merger.linear_fc2.weight"), &[v.out_hidden_size, merged], Init::Normal);
    add(format!("{vis}.merger.linear_fc2.bias"), &[v.out_hidden_size], Init::Zeros);
    out
}

/// Seeded random weights for `cfg` (f32), following [`Init`]. The same seed gives the same tensors.
pub fn random_weights(cfg: &Config, seed: u64, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0f32, 0.02).map_err(|e| Error::Input(e.to_string()))?;
    let mut out = HashMap::new();
    for spec in tensor_specs(cfg) {
        let n: usize = spec.shape.iter().product();
        let data: Vec<f32> = match spec.init {
            Init::Normal => (0..n).map(|_| normal.sample(&mut rng)).collect(),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::ALog => (0..n).map(|_| rng.random_range(0.01f32..16.0).ln()).collect(),
        };
        out.insert(spec.name, Tensor::from_vec(data, spec.shape, device)?);
    }
    Ok(out)
}

/// The safetensors files of a model directory: those named by `model.safetensors.index.json`, else
/// `model.safetensors`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Json { path: index.clone(), message: e.to_string() })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::Json { path: index.clone(), message: "no `weight_map` object".into() })?;
        let mut files = BTreeSet::new();
        for (name, file) in map {
            let f = file.as_str().ok_or_else(|| Error::Json {
                path: index.clone(),
                message: format!("weight_map entry `{name}` is not a file name"),
            })?;
            files.insert(dir.join(f));
        }
        return Ok(files.into_iter().collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(Error::io(&single, std::io::Error::new(std::io::ErrorKind::NotFound, "no safetensors weights in directory")))
}

/// Memory-maps the weight files of `dir`, checks them against `cfg` and returns a `VarBuilder` over them that
/// converts to `dtype` on `device` as tensors are read.
pub fn open_weights(dir: &Path, cfg: &Config, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    Ok(VarBuilder::from_backend(Box::new(checked_weights(dir, cfg)?), dtype, device.clone()))
}

/// Whether [`crate::Qwen35::keep_bf16`] keeps the tensor `name` in bf16 under f32 activations: the text decoder's
/// projections, the embedding table and an untied LM head.
pub fn kept_in_bf16(name: &str) -> bool {
    let projection = name.starts_with("model.language_model.layers.")
        && (name.ends_with("_proj.weight") || name.contains(".in_proj_"));
    projection || name == "model.language_model.embed_tokens.weight" || name == "lm_head.weight"
}

/// [`open_weights`] in f32 on the CPU, except that the tensors [`kept_in_bf16`] which the checkpoint stores in bf16
/// are read as bf16: a bf16 checkpoint loads for bf16 weights with f32 activations without first widening every
/// weight to f32 (a gigabyte less at the load's peak for Qwen3.5-0.8B).
pub fn open_weights_keeping_bf16(dir: &Path, cfg: &Config, device: &Device) -> Result<VarBuilder<'static>> {
    let st = checked_weights(dir, cfg)?;
    let keep = tensor_specs(cfg)
        .into_iter()
        .filter(|s| kept_in_bf16(&s.name))
        .filter(|s| st.get(&s.name).is_ok_and(|v| v.dtype() == safetensors::Dtype::BF16))
        .map(|s| s.name)
        .collect();
    Ok(VarBuilder::from_backend(Box::new(KeepBf16 { st, keep }), DType::F32, device.clone()))
}

/// Reads the names in `keep` as bf16, everything else in the dtype asked for.
struct KeepBf16 {
    st: MmapedSafetensors,
    keep: BTreeSet<String>,
}

impl KeepBf16 {
    fn dtype(&self, name: &str, asked: DType) -> DType {
        if self.keep.contains(name) {
            DType::BF16
        } else {
            asked
        }
    }
}

impl SimpleBackend for KeepBf16 {
    fn get(
        &self,
        s: candle_core::Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        SimpleBackend::get(&self.st, s, name, h, self.dtype(name, dtype), dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.st.get_unchecked(name, self.dtype(name, dtype), dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.st.contains_tensor(name)
    }
}

/// The memory-mapped weight files of `dir`, every tensor `cfg` needs present with its shape and a float dtype.
fn checked_weights(dir: &Path, cfg: &Config) -> Result<MmapedSafetensors> {
    let files = safetensors_files(dir)?;
    for f in &files {
        if !f.exists() {
            return Err(Error::io(f, std::io::Error::new(std::io::ErrorKind::NotFound, "weight shard missing")));
        }
    }
    let st = mmap_files(&files)?;
    let location = dir.display().to_string();
    for spec in tensor_specs(cfg) {
        let view = st.get(&spec.name).map_err(|_| Error::MissingTensor {
            name: spec.name.clone(),
            expected: spec.shape.clone(),
            location: location.clone(),
        })?;
        if view.shape() != spec.shape.as_slice() {
            return Err(Error::ShapeMismatch {
                name: spec.name,
                expected: spec.shape,
                found: view.shape().to_vec(),
                location,
            });
        }
        use safetensors::Dtype as St;
        if !matches!(view.dtype(), St::F32 | St::BF16 | St::F16) {
            return Err(Error::UnsupportedDtype { name: spec.name, dtype: format!("{:?}", view.dtype()), location });
        }
    }
    Ok(st)
}

/// Memory-maps safetensors files (no copy of the data is made until a tensor is read).
#[allow(unsafe_code)]
fn mmap_files(files: &[PathBuf]) -> Result<MmapedSafetensors> {
    // SAFETY: the mapping is read-only; the files must not be truncated or rewritten while the model is loading,
    // which is the contract of every memory-mapped checkpoint loader (candle, transformers, vLLM).
    let st = unsafe { MmapedSafetensors::multi(files) };
    st.map_err(|e| Error::Io {
        path: files.first().cloned().unwrap_or_default(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// Writes `config.json` and `model.safetensors` (tensors converted to `dtype`) into `dir`, creating it.
pub fn save(dir: &Path, cfg: &Config, tensors: &HashMap<String, Tensor>, dtype: DType) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, cfg.to_json_string() + "\n").map_err(|e| Error::io(&config_path, e))?;
    let converted = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?)))
        .collect::<Result<HashMap<String, Tensor>>>()?;
    let path = dir.join("model.safetensors");
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let data: Vec<(&String, &Tensor)> = converted.iter().collect();
    safetensors::serialize_to_file(data, Some(metadata), &path)
        .map_err(|e| Error::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
    Ok(())
}

/// Writes the companion files a downloaded Qwen3.5 directory has besides weights and config:
/// `generation_config.json` (eos = `<|im_end|>` and `<|endoftext|>`) and `preprocessor_config.json`.
/// `min_pixels`/`max_pixels` are the processor's pixel bounds.
pub fn write_companion_files(dir: &Path, cfg: &Config, min_pixels: usize, max_pixels: usize) -> Result<()> {
    let t = &cfg.text_config;
    let eos = t.extra.get("eos_token_id").cloned().unwrap_or(serde_json::Value::Null);
    let pad = t.extra.get("pad_token_id").cloned().unwrap_or(serde_json::Value::Null);
    let generation = serde_json::json!({
        "bos_token_id": pad,
        "eos_token_id": [eos, pad],
        "pad_token_id": pad,
        "do_sample": true,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
    });
    let v = &cfg.vision_config;
    let preprocessor = serde_json::json!({
        "image_processor_type": "Qwen2VLImageProcessorFast",
        "processor_class": "Qwen3VLProcessor",
        "do_resize": true, "do_rescale": true, "do_normalize": true, "do_convert_rgb": true,
        "rescale_factor": 1.0 / 255.0,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "patch_size": v.patch_size, "temporal_patch_size": v.temporal_patch_size, "merge_size": v.spatial_merge_size,
        "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
        "resample": 3,
    });
    for (name, value) in [("generation_config.json", generation), ("preprocessor_config.json", preprocessor)] {
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Writes `tokenizer.json` (the given text), `tokenizer_config.json` and `chat_template.jinja`.
pub fn write_tokenizer_files(dir: &Path, tokenizer_json: &str) -> Result<()> {
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": null,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": 262_144,
        "clean_up_tokenization_spaces": false,
        "chat_template": crate::tokenizer::CHAT_TEMPLATE_JINJA,
    });
    let files = [
        ("tokenizer.json", tokenizer_json.to_string()),
        ("tokenizer_config.json", serde_json::to_string_pretty(&config).unwrap_or_default() + "\n"),
        ("chat_template.jinja", crate::tokenizer::CHAT_TEMPLATE_JINJA.to_string()),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Loads the checkpoint in `dir` as trainable variables (f32 on `device`), checked against `cfg` like
/// [`open_weights`]; `Qwen35::new(cfg, VarBuilder::from_varmap(&varmap, ..))` then trains every weight.
pub fn load_varmap(dir: &Path, cfg: &Config, device: &Device) -> Result<candle_nn::VarMap> {
    let vb = open_weights(dir, cfg, DType::F32, device)?;
    let varmap = candle_nn::VarMap::new();
    {
        let mut data = varmap.data().lock().map_err(|_| Error::Input("variable map lock poisoned".into()))?;
        for spec in tensor_specs(cfg) {
            let t = vb.get(spec.shape.as_slice(), &spec.name)?;
            data.insert(spec.name, candle_core::Var::from_tensor(&t)?);
        }
    }
    Ok(varmap)
}

//! Model configuration, mirroring a Hugging Face `config.json` of `Qwen3_5ForConditionalGeneration`.
//!
//! [`Config::from_json_file`] reads the nested `text_config`/`vision_config` layout of the released checkpoints,
//! derives the layer layout from `layer_types` (or `full_attention_interval` when absent) and rejects fields whose
//! values this implementation does not support, naming the field. Unknown fields are kept in `extra` maps so that
//! saving a loaded config writes them back unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The token mixer of one decoder layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerType {
    /// Gated DeltaNet linear attention.
    LinearAttention,
    /// Output-gated softmax attention with partial M-RoPE.
    FullAttention,
}

/// `text_config.rope_parameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    #[serde(default = "default_rope_type")]
    pub rope_type: String,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_partial_rotary_factor")]
    pub partial_rotary_factor: f64,
    pub mrope_section: Vec<usize>,
    #[serde(default = "default_true")]
    pub mrope_interleaved: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `text_config`: the hybrid decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    #[serde(default = "default_silu")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_attention_interval: Option<usize>,
    /// Filled in by validation when the file only has `full_attention_interval`.
    #[serde(default)]
    pub layer_types: Vec<LayerType>,
    #[serde(default = "default_conv_kernel")]
    pub linear_conv_kernel_dim: usize,
    pub linear_key_head_dim: usize,
    pub linear_value_head_dim: usize,
    pub linear_num_key_heads: usize,
    pub linear_num_value_heads: usize,
    pub rope_parameters: RopeParameters,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `vision_config`: the ViT (Qwen3-VL style, without deepstack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    #[serde(default = "default_three")]
    pub in_channels: usize,
    #[serde(default = "default_patch")]
    pub patch_size: usize,
    #[serde(default = "default_two")]
    pub spatial_merge_size: usize,
    #[serde(default = "default_two")]
    pub temporal_patch_size: usize,
    pub out_hidden_size: usize,
    pub num_position_embeddings: usize,
    #[serde(default = "default_gelu_tanh")]
    pub hidden_act: String,
    #[serde(default)]
    pub deepstack_visual_indexes: Vec<usize>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The whole `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub image_token_id: u32,
    pub video_token_id: u32,
    pub vision_start_token_id: u32,
    pub vision_end_token_id: u32,
    pub tie_word_embeddings: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn default_rope_type() -> String {
    "default".into()
}
fn default_rope_theta() -> f64 {
    1e7
}
fn default_partial_rotary_factor() -> f64 {
    0.25
}
fn default_true() -> bool {
    true
}
fn default_silu() -> String {
    "silu".into()
}
fn default_gelu_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    262_144
}
fn default_conv_kernel() -> usize {
    4
}
fn default_three() -> usize {
    3
}
fn default_two() -> usize {
    2
}
fn default_patch() -> usize {
    16
}

impl Config {
    /// Reads and validates `config.json`.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text).map_err(|e| match e {
            Error::Json { message, .. } => Error::Json { path: path.to_path_buf(), message },
            Error::Config { field, message } => {
                Error::Config { field, message: format!("{message} (in {})", path.display()) }
            }
            other => other,
        })
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::Json { path: "<config>".into(), message: e.to_string() })?;
        let Value::Object(mut top) = value else {
            return Err(Error::config("<root>", "expected a JSON object"));
        };
        let text_config = take_section::<TextConfig>(&mut top, "text_config")?;
        let vision_config = take_section::<VisionConfig>(&mut top, "vision_config")?;
        let field = |top: &BTreeMap<String, Value>, name: &str| -> Result<u32> {
            let v = top.get(name).ok_or_else(|| Error::config(name, "missing"))?;
            v.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(|| Error::config(name, "expected a token id"))
        };
        let mut top: BTreeMap<String, Value> = top.into_iter().collect();
        let image_token_id = field(&top, "image_token_id")?;
        let video_token_id = field(&top, "video_token_id")?;
        let vision_start_token_id = field(&top, "vision_start_token_id")?;
        let vision_end_token_id = field(&top, "vision_end_token_id")?;
        let tie_word_embeddings = match top.get("tie_word_embeddings") {
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Error::config("tie_word_embeddings", "expected a boolean")),
            None => return Err(Error::config("tie_word_embeddings", "missing")),
        };
        for k in
            ["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "tie_word_embeddings"]
        {
            top.remove(k);
        }
        let mut cfg = Config {
            text_config,
            vision_config,
            image_token_id,
            video_token_id,
            vision_start_token_id,
            vision_end_token_id,
            tie_word_embeddings,
            extra: top,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialises the config as `config.json` text (pretty-printed).
    pub fn to_json_string(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Fills derived fields and rejects what this implementation does not support; each error names its field.
    pub fn validate(&mut self) -> Result<()> {
        let t = &mut self.text_config;
        if t.layer_types.is_empty() {
            let interval = t.full_attention_interval.unwrap_or(4);
            if interval == 0 {
                return Err(Error::config("text_config.full_attention_interval", "must be positive"));
            }
            t.layer_types = (0..t.num_hidden_layers)
                .map(|i| if (i + 1) % interval == 0 { LayerType::FullAttention } else { LayerType::LinearAttention })
                .collect();
        }
        if t.layer_types.len() != t.num_hidden_layers {
            return Err(Error::config(
                "text_config.layer_types",
                format!("has {} entries but num_hidden_layers is {}", t.layer_types.len(), t.num_hidden_layers),
            ));
        }
        if t.hidden_act != "silu" {
            return Err(Error::config("text_config.hidden_act", format!("unsupported `{}` (only silu)", t.hidden_act)));
        }
        if t.attention_bias {
            return Err(Error::config("text_config.attention_bias", "unsupported `true`"));
        }
        let rp = &t.rope_parameters;
        if rp.rope_type != "default" {
            return Err(Error::config(
                "text_config.rope_parameters.rope_type",
                format!("unsupported `{}` (only default)", rp.rope_type),
            ));
        }
        if !rp.mrope_interleaved {
            return Err(Error::config("text_config.rope_parameters.mrope_interleaved", "unsupported `false`"));
        }
        let rot = (t.head_dim as f64 * t.rope_parameters.partial_rotary_factor) as usize;
        if rot == 0 || rot % 2 != 0 || rot > t.head_dim {
            return Err(Error::config(
                "text_config.rope_parameters.partial_rotary_factor",
                format!("gives rotary dim {rot} for head_dim {}", t.head_dim),
            ));
        }
        if rp.mrope_section.len() != 3 || rp.mrope_section.iter().sum::<usize>() != rot / 2 {
            return Err(Error::config(
                "text_config.rope_parameters.mrope_section",
                format!("must be 3 numbers summing to rotary_dim/2 = {}", rot / 2),
            ));
        }
        if t.num_attention_heads == 0
            || t.num_key_value_heads == 0
            || t.num_attention_heads % t.num_key_value_heads != 0
        {
            return Err(Error::config(
                "text_config.num_key_value_heads",
                "must be positive and divide num_attention_heads",
            ));
        }
        if t.linear_num_key_heads == 0
            || t.linear_num_value_heads == 0
            || t.linear_num_value_heads % t.linear_num_key_heads != 0
        {
            return Err(Error::config(
                "text_config.linear_num_value_heads",
                "must be positive and a multiple of linear_num_key_heads",
            ));
        }
        if t.linear_conv_kernel_dim == 0 {
            return Err(Error::config("text_config.linear_conv_kernel_dim", "must be positive"));
        }
        let v = &self.vision_config;
        if !v.deepstack_visual_indexes.is_empty() {
            return Err(Error::config(
                "vision_config.deepstack_visual_indexes",
                "deepstack is not supported (want [])",
            ));
        }
        if v.hidden_act != "gelu_pytorch_tanh" {
            return Err(Error::config(
                "vision_config.hidden_act",
                format!("unsupported `{}` (only gelu_pytorch_tanh)", v.hidden_act),
            ));
        }
        if v.num_heads == 0 || v.hidden_size % v.num_heads != 0 || (v.hidden_size / v.num_heads) % 4 != 0 {
            return Err(Error::config("vision_config.num_heads", "hidden_size/num_heads must be a multiple of 4"));
        }
        let side = (v.num_position_embeddings as f64).sqrt().round() as usize;
        if side * side != v.num_position_embeddings || side < 2 {
            return Err(Error::config("vision_config.num_position_embeddings", "must be a perfect square ≥ 4"));
        }
        if v.out_hidden_size != t.hidden_size {
            return Err(Error::config("vision_config.out_hidden_size", "must equal text_config.hidden_size"));
        }
        for (name, id) in [
            ("image_token_id", self.image_token_id),
            ("video_token_id", self.video_token_id),
            ("vision_start_token_id", self.vision_start_token_id),
            ("vision_end_token_id", self.vision_end_token_id),
        ] {
            if id as usize >= t.vocab_size {
                return Err(Error::config(name, format!("{id} is not below vocab_size {}", t.vocab_size)));
            }
        }
        Ok(())
    }

    /// Number of leading head dimensions that full-attention layers rotate.
    pub fn rotary_dim(&self) -> usize {
        let t = &self.text_config;
        (t.head_dim as f64 * t.rope_parameters.partial_rotary_factor) as usize
    }

    /// The 394,960-parameter test model of `qwen35_notes.md` §2.2 (vocabulary of 2,048 BPE ranks plus specials).
    pub fn tiny() -> Self {
        Self::from_json_str(TINY_JSON).unwrap_or_else(|e| unreachable!("built-in tiny config is valid: {e}"))
    }

    /// The tiny model with the real 248,320-token vocabulary and Qwen3.5 special-token ids.
    pub fn tiny_realvocab() -> Self {
        let mut c = Self::tiny();
        c.text_config.vocab_size = 248_320;
        c.image_token_id = 248_056;
        c.video_token_id = 248_057;
        c.vision_start_token_id = 248_053;
        c.vision_end_token_id = 248_054;
        c.text_config.extra.insert("eos_token_id".into(), Value::from(248_046));
        c.text_config.extra.insert("pad_token_id".into(), Value::from(248_044));
        c
    }

    /// The shape of Qwen3.5-0.8B (`qwen35_notes.md` §2.1).
    pub fn qwen35_0_8b() -> Self {
        Self::from_json_str(QWEN35_08B_JSON).unwrap_or_else(|e| unreachable!("built-in 0.8B config is valid: {e}"))
    }
}

fn take_section<T: serde::de::DeserializeOwned>(top: &mut serde_json::Map<String, Value>, name: &str) -> Result<T> {
    let v = top.remove(name).ok_or_else(|| Error::config(name, "missing"))?;
    serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        // serde names the offending field in backticks (missing field `x`, invalid type … for `x`).
        let field = if msg.starts_with("unknown variant") {
            // The only enum in a section is `layer_types`.
            format!("{name}.layer_types")
        } else {
            msg.split('`').nth(1).map(|f| format!("{name}.{f}")).unwrap_or_else(|| name.to_string())
        };
        Error::config(field, msg)
    })
}

const TINY_JSON: &str = r#"{
 "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
 "image_token_id": 2060, "video_token_id": 2061,
 "vision_start_token_id": 2057, "vision_end_token_id": 2058,
 "tie_word_embeddings": true,
 "text_config": {
  "model_type": "qwen3_5_text", "vocab_size": 2112, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 4, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
  "hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
  "full_attention_interval": 2,
  "layer_types": ["linear_attention","full_attention","linear_attention","full_attention"],
  "linear_conv_kernel_dim": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
  "linear_num_key_heads": 2, "linear_num_value_heads": 4,
  "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                      "mrope_section": [2, 1, 1], "mrope_interleaved": true},
  "attention_bias": false, "tie_word_embeddings": true, "eos_token_id": 2050, "pad_token_id": 2048
 },
 "vision_config": {
  "model_type": "qwen3_5", "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
  "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
  "out_hidden_size": 64, "num_position_embeddings": 64, "hidden_act": "gelu_pytorch_tanh",
  "deepstack_visual_indexes": []
 }
}"#;

const QWEN35_08B_JSON: &str = r#"{
 "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
 "image_token_id": 248056, "video_token_id": 248057,
 "vision_start_token_id": 248053, "vision_end_token_id": 248054,
 "tie_word_embeddings": true,
 "text_config": {
  "model_type": "qwen3_5_text", "vocab_size": 248320, "hidden_size": 1024, "intermediate_size": 3584,
  "num_hidden_layers": 24, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 256,
  "hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 262144,
  "full_attention_interval": 4,
  "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
  "linear_num_key_heads": 16, "linear_num_value_heads": 16,
  "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                      "mrope_section": [11, 11, 10], "mrope_interleaved": true},
  "attention_bias": false, "tie_word_embeddings": true, "eos_token_id": 248046, "pad_token_id": 248044
 },
 "vision_config": {
  "model_type": "qwen3_5", "depth": 12, "hidden_size": 768, "intermediate_size": 3072, "num_heads": 12,
  "in_channels": 3, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
  "out_hidden_size": 1024, "num_position_embeddings": 2304, "hidden_act": "gelu_pytorch_tanh",
  "deepstack_visual_indexes": []
 }
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_layer_types_and_rotary_dim() {
        let c = Config::tiny();
        assert_eq!(c.rotary_dim(), 8);
        assert_eq!(c.text_config.layer_types[1], LayerType::FullAttention);
        assert_eq!(c.text_config.layer_types[2], LayerType::LinearAttention);
    }

    #[test]
    fn layer_types_fall_back_to_interval() {
        let c = Config::qwen35_0_8b();
        let full: Vec<usize> = c
            .text_config
            .layer_types
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == LayerType::FullAttention)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(full, vec![3, 7, 11, 15, 19, 23]);
    }

    #[test]
    fn round_trip_keeps_unknown_fields() {
        let c = Config::tiny();
        let back = Config::from_json_str(&c.to_json_string()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.extra.get("model_type"), Some(&Value::from("qwen3_5")));
        assert_eq!(back.text_config.extra.get("eos_token_id"), Some(&Value::from(2050)));
    }

    fn edit(f: impl FnOnce(&mut Value)) -> Result<Config> {
        let mut v: Value = serde_json::from_str(TINY_JSON).unwrap();
        f(&mut v);
        Config::from_json_str(&v.to_string())
    }

    fn field_of(r: Result<Config>) -> String {
        match r {
            Err(Error::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(edit(|v| {
                v["text_config"].as_object_mut().unwrap().remove("hidden_size");
            })),
            "text_config.hidden_size"
        );
        assert_eq!(field_of(edit(|v| v["text_config"]["hidden_act"] = "gelu".into())), "text_config.hidden_act");
        assert_eq!(
            field_of(edit(|v| v["vision_config"]["deepstack_visual_indexes"] = serde_json::json!([1]))),
            "vision_config.deepstack_visual_indexes"
        );
        assert_eq!(
            field_of(edit(|v| v["text_config"]["layer_types"] = serde_json::json!(["linear_attention"]))),
            "text_config.layer_types"
        );
        assert_eq!(
            field_of(edit(|v| v["text_config"]["rope_parameters"]["rope_type"] = "yarn".into())),
            "text_config.rope_parameters.rope_type"
        );
        assert_eq!(
            field_of(edit(|v| {
                v.as_object_mut().unwrap().remove("tie_word_embeddings");
            })),
            "tie_word_embeddings"
        );
    }
}

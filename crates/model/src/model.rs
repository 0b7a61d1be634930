//! The composed vision-language model: vision tower → placeholder scatter → text decoder → LM head.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ops::Linear;
use crate::positions::rope_index;
use crate::rope::MropePositions;
use crate::text::{TextCache, TextModel};
use crate::vision::VisionModel;

/// Images for one forward pass: preprocessed patches of all images, concatenated, and their grids.
#[derive(Debug, Clone, Copy)]
pub struct ImageInput<'a> {
    /// `[Σ patches, C·T_p·P·P]`.
    pub pixel_values: &'a Tensor,
    pub grids: &'a [[usize; 3]],
}

/// Inputs of [`Qwen35::forward`], named so call sites read.
#[derive(Debug, Default)]
pub struct ModelInput<'a> {
    /// `[B, T]` u32 token ids (right-padded if the sequences differ in length).
    pub input_ids: Option<&'a Tensor>,
    pub images: Option<ImageInput<'a>>,
    /// Explicit positions; computed from the ids and grids (or the cache) when absent.
    pub positions: Option<&'a MropePositions>,
    /// Also return the input embeddings and every layer's output.
    pub keep_hidden_states: bool,
}

/// Outputs of [`Qwen35::forward`].
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// `[B, T, vocab]`.
    pub logits: Tensor,
    pub hidden_states: Vec<Tensor>,
}

/// Decoding state of a batch: the text cache plus each sequence's M-RoPE delta.
#[derive(Debug)]
pub struct Cache {
    pub text: TextCache,
    pub rope_deltas: Vec<i64>,
}

impl Cache {
    pub fn new(cfg: &Config) -> Self {
        Self { text: TextCache::new(&cfg.text_config), rope_deltas: Vec::new() }
    }
}

/// `Qwen3_5ForConditionalGeneration`.
#[derive(Debug, Clone)]
pub struct Qwen35 {
    pub config: Config,
    pub text: TextModel,
    pub vision: VisionModel,
    pub lm_head: Linear,
}

impl Qwen35 {
    /// Builds the model from `vb` rooted at the checkpoint root (`model.*`, `lm_head.*`).
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let text = TextModel::load(cfg, vb.pp("model").pp("language_model"))?;
        let vision = VisionModel::load(&cfg.vision_config, vb.pp("model").pp("visual"))?;
        let lm_head = if cfg.tie_word_embeddings {
            Linear { weight: text.embed_tokens.clone(), bias: None }
        } else {
            let t = &cfg.text_config;
            Linear::load(&vb.pp("lm_head"), t.hidden_size, t.vocab_size, false)?
        };
        Ok(Self { config: cfg.clone(), text, vision, lm_head })
    }

    /// Loads a Hugging Face model directory (`config.json` + safetensors) in `dtype` on `device`.
    pub fn from_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg = Config::from_json_file(&dir.join("config.json"))?;
        let vb = checkpoint::open_weights(dir, &cfg, dtype, device)?;
        Self::new(&cfg, vb)
    }

    /// Loads a model directory on the CPU for bf16 weights with f32 activations: the tensors
    /// [`checkpoint::kept_in_bf16`] stays bf16 where the checkpoint stores them so (read as such, never widened),
    /// everything else is f32. [`Qwen35::keep_bf16`] then leaves them as they are.
    pub fn from_dir_keeping_bf16(dir: &Path) -> Result<Self> {
        let cfg = Config::from_json_file(&dir.join("config.json"))?;
        Self::new(&cfg, checkpoint::open_weights_keeping_bf16(dir, &cfg, &Device::Cpu)?)
    }

    /// Builds the model over in-memory tensors (for example [`checkpoint::random_weights`]).
    pub fn from_tensors(cfg: &Config, tensors: HashMap<String, Tensor>, dtype: DType, device: &Device) -> Result<Self> {
        Self::new(cfg, VarBuilder::from_tensors(tensors, dtype, device))
    }

    /// For CPU inference: keeps the text decoder's projection weights, the embedding table and the LM head in
    /// bf16 while activations stay f32 ([`TextModel::keep_bf16`]). A decode step then reads about half the bytes
    /// (lossless for checkpoints stored in bf16, as Qwen3.5's are). A tied head shares the bf16 table; norms and the
    /// vision tower keep their dtype. Only meaningful for an f32 model on the CPU (other devices multiply in their
    /// dtype).
    pub fn keep_bf16(&mut self) -> Result<()> {
        self.text.keep_bf16()?;
        self.lm_head = if self.config.tie_word_embeddings {
            Linear { weight: self.text.embed_tokens.clone(), bias: None }
        } else {
            self.lm_head.keep_bf16()?
        };
        Ok(())
    }

    /// Input embeddings with image features scattered over the image-placeholder tokens (in order).
    pub fn embed(&self, ids: &Tensor, images: Option<ImageInput>) -> Result<Tensor> {
        let text = self.text.embed(ids)?;
        let Some(images) = images else { return Ok(text) };
        let feats = self.vision.forward(images.pixel_values, images.grids)?.to_dtype(text.dtype())?;
        let (b, t, h) = text.dims3()?;
        let flat_ids = ids.flatten_all()?.to_vec1::<u32>()?;
        let mut next = 0u32;
        let n_feats = feats.dim(0)? as u32;
        let index: Vec<u32> = flat_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                if id == self.config.image_token_id {
                    next += 1;
                    (b * t) as u32 + next - 1
                } else {
                    i as u32
                }
            })
            .collect();
        if next != n_feats {
            return Err(Error::Input(format!("{next} image placeholder tokens but {n_feats} image features")));
        }
        let all = Tensor::cat(&[&text.reshape((b * t, h))?, &feats], 0)?;
        let index = Tensor::from_vec(index, b * t, ids.device())?;
        Ok(all.index_select(&index, 0)?.reshape((b, t, h))?)
    }

    /// Runs the model. With `cache`, continues the sequences and updates their state.
    pub fn forward(&self, input: &ModelInput, mut cache: Option<&mut Cache>) -> Result<ModelOutput> {
        let ids = input.input_ids.ok_or_else(|| Error::Input("input_ids are required".into()))?;
        let (b, t) = ids.dims2()?;
        let embeds = self.embed(ids, input.images)?;
        let computed;
        let positions = match input.positions {
            Some(p) => p,
            None => {
                let seen = cache.as_deref().map_or(0, |c| c.text.seen);
                computed = if seen == 0 {
                    let grids = input.images.map_or(&[][..], |i| i.grids);
                    let (p, deltas) = rope_index(&self.config, &ids.to_vec2::<u32>()?, grids)?;
                    if let Some(c) = cache.as_deref_mut() {
                        c.rope_deltas = deltas;
                    }
                    p
                } else {
                    let deltas = cache.as_deref().map(|c| c.rope_deltas.clone()).unwrap_or_default();
                    let mut p = MropePositions::text(b, t, seen as i64);
                    for axis in p.ids.iter_mut() {
                        for (row, d) in axis.iter_mut().zip(deltas.iter()) {
                            row.iter_mut().for_each(|x| *x += d);
                        }
                    }
                    p
                };
                &computed
            }
        };
        let out = self.text.forward(&embeds, positions, cache.map(|c| &mut c.text), input.keep_hidden_states)?;
        let logits = self.lm_head.forward(&out.last_hidden)?;
        Ok(ModelOutput { logits, hidden_states: out.hidden_states })
    }
}

//! Qwen3.5 vision-language model (`Qwen3_5ForConditionalGeneration`) on candle, for inference and training.
//!
//! This crate owns the model: its [`config::Config`] (mirroring Hugging Face `config.json`), the hybrid text
//! decoder ([`text`]: Gated DeltaNet and output-gated full attention with partial M-RoPE), the vision tower and
//! image preprocessing ([`vision`]), M-RoPE position ids ([`positions`]) and checkpoints ([`checkpoint`]: load
//! and save Hugging Face directories, seeded random init). [`Qwen35`] composes them. [`cuda`] opens the GPU and
//! captures fixed-shape decode steps ([`text::TextModel::decode_static`]) as CUDA graphs.
//!
//! Every op on the forward path has a candle gradient (the fused candle-nn kernels without backward are not used),
//! so building the model over a `VarMap` makes all weights trainable. Decoding state is explicit ([`Cache`]).
//! The crate knows nothing about scene graphs, prompts, sampling or training loops.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use sgvlm_model::{checkpoint, Config, ModelInput, Qwen35};
//!
//! let cfg = Config::tiny();
//! let weights = checkpoint::random_weights(&cfg, 0, &Device::Cpu).unwrap();
//! let model = Qwen35::from_tensors(&cfg, weights, DType::F32, &Device::Cpu).unwrap();
//! let ids = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
//! let out = model.forward(&ModelInput { input_ids: Some(&ids), ..Default::default() }, None).unwrap();
//! assert_eq!(out.logits.dims(), &[1, 3, 2112]);
//! ```

pub mod checkpoint;
pub mod config;
pub mod cuda;
pub mod error;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod positions;
pub mod profile;
pub mod rope;
pub mod text;
pub mod tokenizer;
pub mod vision;

pub use config::{Config, LayerType};
pub use error::{Error, Result};
pub use model::{Cache, ImageInput, ModelInput, ModelOutput, Qwen35};
pub use rope::MropePositions;

//! # sgvlm-train
//!
//! Training of the Qwen3.5 model of `sgvlm-model` on scene-graph data. It owns
//! - the loss through the LM head in vocabulary chunks, so full-vocabulary logits never exist ([`loss`]);
//! - tokenised examples, group-by-length batching and collation ([`batch`], [`encode`], [`rows`]: MS-SWIFT JSONL);
//! - the trainable model with freezing and Hugging Face checkpoints ([`policy`]), AdamW, the schedule and
//!   clipping ([`optim`]);
//! - supervised fine-tuning with exact resume ([`sft`]) and GRPO with the paper's rewards ([`grpo`]), whose
//!   rollouts come through the small [`rollout::Rollout`] trait (the built-in sampler, or the native engine with
//!   constrained decoding: [`engine_rollout`]), with an optional per-row credit that is not the paper's
//!   ([`credit`]);
//! - how both steps' examples become passes on the CPU's threads ([`passes`]);
//! - the corruption of previous-frame graphs in video prompts ([`corrupt`]);
//! - a loss-weight curriculum on number tokens ([`curriculum`]);
//! - TOML run configs ([`config`]) and the synthetic end-to-end demo ([`demo`]).
//!
//! Loops report through [`report::Reporter`]; only the binary draws progress bars.

pub mod batch;
pub mod bench;
pub mod config;
pub mod corrupt;
pub mod credit;
pub mod curriculum;
pub mod demo;
pub mod encode;
pub mod engine_rollout;
pub mod error;
pub mod grpo;
pub mod loss;
pub mod optim;
pub mod passes;
pub mod policy;
pub mod precision;
pub mod report;
pub mod rollout;
pub mod rows;
pub mod sft;

pub use error::{Result, TrainError};

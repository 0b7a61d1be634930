//! Turning images and video frames into scene-graph text: this crate owns generation.
//!
//! A [`Backend`] takes a batch of [`GenRequest`]s (chat messages with `<image>` placeholders, the images as encoded
//! bytes, sampling settings, stop strings, an optional TOON constraint) and returns one [`GenOutput`] or one
//! [`BackendError`] per request, in order. Implementations: the native engine over `sgvlm-model`, and an
//! OpenAI-compatible HTTP client for vLLM, SGLang or mistral.rs servers. The dataset runners (`infer`, `video`)
//! and the server are written against the trait, so every feature works with either backend.

pub mod backend;

pub use backend::{Backend, BackendError, Constraint, FinishReason, GenOutput, GenParams, GenRequest, Message, Role};

pub mod bench;
pub mod constrain;
pub mod engine;
pub mod fake;
pub mod judge_backend;
pub mod native;
pub mod openai;
pub mod runner;
pub mod sample;
pub mod server;

//! The one interface every generation backend implements, and the request/response types it speaks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sgvlm_graph::Schema;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message. In user content, each `<image>` marks where the next image of the request goes (MS-SWIFT's
/// convention); a user message without the marker gets its images before the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Closed-grammar decoding: every generated token must keep the text a prefix of a valid TOON answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub schema: Schema,
    /// Box coordinates are bounded by this canvas (width, height).
    pub canvas: (u32, u32),
    /// Closed object vocabulary (None: any label the grammar allows).
    pub objects: Option<Arc<Vec<String>>>,
    /// Closed predicate vocabulary.
    pub predicates: Option<Arc<Vec<String>>>,
}

/// Sampling and stopping settings of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    pub max_new_tokens: usize,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u64>,
    /// Generation stops after the first occurrence of any of these; the stop string is kept in the text
    /// (the reference truncates at `</answer>` inclusive).
    pub stop: Vec<String>,
    /// Replaces the non-thinking prefix at the start of the assistant turn and is prepended to the returned
    /// text, as MS-SWIFT's `response_prefix` does. None: the template's non-thinking prefix, also prepended.
    pub response_prefix: Option<String>,
    pub constraint: Option<Constraint>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 2048,
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
            stop: vec!["</answer>".to_string()],
            response_prefix: None,
            constraint: None,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone)]
pub struct GenRequest {
    pub messages: Vec<Message>,
    /// Encoded images (PNG/JPEG bytes), in the order of their `<image>` markers. Shared, so that a request can be
    /// cloned into many rollouts without copying pixels.
    pub images: Vec<Arc<Vec<u8>>>,
    pub params: GenParams,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop string was produced.
    Stop,
    /// The model produced an end-of-sequence token.
    EndToken,
    /// `max_new_tokens` was reached: the text is truncated.
    Length,
}

/// What one request produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenOutput {
    /// Response text (response prefix included, as the reference's outputs are).
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: FinishReason,
    /// Wall time of the batch this request ran in, in seconds.
    pub batch_time_sec: f64,
}

/// Why one request failed. The other requests of the batch are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("image {index}: {message}")]
    Image { index: usize, message: String },
    #[error("prompt of {tokens} tokens exceeds the limit of {limit}")]
    TooLong { tokens: usize, limit: usize },
    #[error("http: {0}")]
    Http(String),
    #[error("timed out after {0:.1} s")]
    Timeout(f64),
    #[error("engine: {0}")]
    Engine(String),
}

/// A generation backend. Implementations are shared across threads; `generate` may be called concurrently.
pub trait Backend: Send + Sync {
    /// A short name for logs and output rows (`model_name`).
    fn name(&self) -> &str;

    /// Generates for every request; the result has one entry per request, in order.
    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<GenOutput, BackendError>>;
}

//! One error type for every route, answered as OpenAI's error JSON: `{"error": {"message", "type", "code"}}`.

use crate::BackendError;
use serde_json::json;

/// A request that could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: 400, message: message.into() }
    }

    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    /// OpenAI's error types: `invalid_request_error` for 4xx, `server_error` otherwise.
    pub fn body(&self) -> String {
        let kind = if self.status < 500 { "invalid_request_error" } else { "server_error" };
        json!({"error": {"message": self.message, "type": kind, "code": self.status}}).to_string()
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let status = match e {
            BackendError::BadRequest(_) | BackendError::Image { .. } | BackendError::TooLong { .. } => 400,
            BackendError::Http(_) => 502,
            BackendError::Timeout(_) => 504,
            BackendError::Engine(_) => 500,
        };
        ApiError { status, message: e.to_string() }
    }
}

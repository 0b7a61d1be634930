//! `POST /v1/chat/completions`: OpenAI's request and response shapes over a [`GenRequest`].
//!
//! User content may be a string or a list of parts: `text` parts and `image_url` parts whose URL is a base64 data
//! URL (the server fetches nothing). Parts are joined with `\n`, each image becoming an `<image>` marker, so
//! `[image, text]` gives the training prompts' `<image>\n…`. Defaults differ from OpenAI's where the model needs it:
//! temperature 0 (greedy, as the reference runs). A final assistant message with `continue_final_message: true` is
//! the response prefix (vLLM's convention). As OpenAI servers do, the returned content leaves out the prefix and
//! the stop string; `stop_reason` names the stop string that ended generation.

use super::error::ApiError;
use super::ServerConfig;
use crate::{FinishReason, GenOutput, GenParams, GenRequest, Message, Role};
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::Arc;

/// Decodes a `data:<mime>;base64,<payload>` URL (or bare base64) and checks that the bytes are an image.
pub fn decode_image(url: &str, index: usize) -> Result<Vec<u8>, ApiError> {
    let payload = if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| ApiError::bad_request(format!("image {index}: a data URL without a comma")))?;
        if !meta.ends_with(";base64") {
            return Err(ApiError::bad_request(format!("image {index}: only base64 data URLs are accepted")));
        }
        data
    } else if url.starts_with("http://") || url.starts_with("https://") {
        return Err(ApiError::bad_request(format!(
            "image {index}: the server fetches no URLs; send the image as a base64 data URL"
        )));
    } else {
        url
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| ApiError::bad_request(format!("image {index}: invalid base64: {e}")))?;
    check_image(&bytes, index)?;
    Ok(bytes)
}

/// Decodes the image fully, so an undecodable one is rejected here rather than inside a batch.
pub fn check_image(bytes: &[u8], index: usize) -> Result<(u32, u32), ApiError> {
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::bad_request(format!("image {index}: {e}")))?
        .decode()
        .map_err(|e| ApiError::bad_request(format!("image {index}: not a decodable PNG/JPEG image: {e}")))?;
    Ok((img.width(), img.height()))
}

fn role_of(v: &Value) -> Result<Role, ApiError> {
    match v.as_str() {
        Some("system" | "developer") => Ok(Role::System),
        Some("user") => Ok(Role::User),
        Some("assistant") => Ok(Role::Assistant),
        other => Err(ApiError::bad_request(format!("unsupported message role {other:?}"))),
    }
}

fn content_of(v: &Value, images: &mut Vec<Arc<Vec<u8>>>) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut pieces = Vec::with_capacity(parts.len());
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => pieces.push(part.get("text").and_then(Value::as_str).unwrap_or("").to_string()),
                    Some("image_url") => {
                        let url = match &part["image_url"] {
                            Value::String(s) => s.as_str(),
                            obj => obj
                                .get("url")
                                .and_then(Value::as_str)
                                .ok_or_else(|| ApiError::bad_request("an image_url part without a url"))?,
                        };
                        images.push(Arc::new(decode_image(url, images.len())?));
                        pieces.push("<image>".to_string());
                    }
                    other => return Err(ApiError::bad_request(format!("unsupported content part type {other:?}"))),
                }
            }
            Ok(pieces.join("\n"))
        }
        _ => Err(ApiError::bad_request("message content must be a string or a list of parts")),
    }
}

/// The generation request of a chat-completions body.
pub fn parse_request(body: &Value, cfg: &ServerConfig) -> Result<GenRequest, ApiError> {
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("`messages` must be a list"))?;
    if list.is_empty() {
        return Err(ApiError::bad_request("`messages` is empty"));
    }
    let mut images = Vec::new();
    let mut messages = Vec::with_capacity(list.len());
    for m in list {
        messages.push(Message { role: role_of(&m["role"])?, content: content_of(&m["content"], &mut images)? });
    }
    let mut response_prefix = None;
    if body.get("continue_final_message").and_then(Value::as_bool) == Some(true) {
        match messages.pop() {
            Some(Message { role: Role::Assistant, content }) => response_prefix = Some(content),
            _ => return Err(ApiError::bad_request("continue_final_message needs a final assistant message")),
        }
    }
    let max_new_tokens = match body.get("max_completion_tokens").or_else(|| body.get("max_tokens")) {
        None | Some(Value::Null) => cfg.default_max_new_tokens,
        Some(v) => {
            v.as_u64().ok_or_else(|| ApiError::bad_request("max_tokens must be a non-negative integer"))? as usize
        }
    };
    if max_new_tokens > cfg.max_new_tokens_limit {
        return Err(ApiError::bad_request(format!(
            "max_tokens {max_new_tokens} exceeds this server's limit of {}",
            cfg.max_new_tokens_limit
        )));
    }
    let number = |key: &str, default: f64| -> Result<f64, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| ApiError::bad_request(format!("`{key}` must be a number"))),
        }
    };
    let stop = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str().map(str::to_string).ok_or_else(|| ApiError::bad_request("`stop` entries must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("`stop` must be a string or a list of strings")),
    };
    let params = GenParams {
        max_new_tokens,
        temperature: number("temperature", 0.0)? as f32,
        top_p: number("top_p", 1.0)? as f32,
        seed: body.get("seed").and_then(Value::as_u64),
        stop,
        response_prefix,
        constraint: None,
    };
    Ok(GenRequest { messages, images, params })
}

/// The OpenAI response body for one output.
pub fn response_body(id: u64, model: &str, req: &GenRequest, out: &GenOutput) -> Value {
    let mut text = out.text.as_str();
    if let Some(prefix) = &req.params.response_prefix {
        text = text.strip_prefix(prefix.as_str()).unwrap_or(text);
    }
    let mut stop_reason = Value::Null;
    if out.finish == FinishReason::Stop {
        if let Some(stop) = req.params.stop.iter().find(|s| text.ends_with(s.as_str())) {
            text = &text[..text.len() - stop.len()];
            stop_reason = json!(stop);
        }
    }
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": if out.finish == FinishReason::Length { "length" } else { "stop" },
            "stop_reason": stop_reason,
        }],
        "usage": {
            "prompt_tokens": out.prompt_tokens,
            "completion_tokens": out.completion_tokens,
            "total_tokens": out.prompt_tokens + out.completion_tokens,
        },
    })
}

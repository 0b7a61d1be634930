//! The chat-completions JSON this client sends and reads, kept apart from the transport so it can be tested
//! without a server.
//!
//! A user message's `<image>` markers are removed and its images go first, as `image_url` content parts holding
//! base64 data URLs (what the reference's OpenRouter scripts send). A response prefix is sent vLLM's way: a final
//! assistant message with the prefix, `continue_final_message: true` and `add_generation_prompt: false`; it is
//! prepended to the returned text, as the native backend does. OpenAI servers drop the stop string from the text;
//! when the server names the one it matched (vLLM's `stop_reason`), it is put back, since this crate's outputs keep
//! it.

use crate::{BackendError, FinishReason, GenOutput, GenRequest, Role};
use base64::Engine as _;
use serde_json::{json, Value};

/// The MIME type of encoded image bytes, from their magic number.
pub fn image_mime(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

/// `data:<mime>;base64,<bytes>`.
pub fn data_url(bytes: &[u8]) -> String {
    format!("data:{};base64,{}", image_mime(bytes), base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The request body for one generation request.
pub fn request_body(model: &str, req: &GenRequest) -> Value {
    let mut images = req.images.iter();
    let mut messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| match m.role {
            Role::User if !req.images.is_empty() => {
                let mut parts: Vec<Value> = images
                    .by_ref()
                    .map(|img| json!({"type": "image_url", "image_url": {"url": data_url(img)}}))
                    .collect();
                parts.push(json!({"type": "text", "text": m.content.replace("<image>", "").trim()}));
                json!({"role": "user", "content": parts})
            }
            role => json!({"role": role, "content": m.content}),
        })
        .collect();
    let p = &req.params;
    let mut body = json!({
        "model": model,
        "max_tokens": p.max_new_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
    });
    if let Some(seed) = p.seed {
        body["seed"] = json!(seed);
    }
    if !p.stop.is_empty() {
        body["stop"] = json!(p.stop);
    }
    if let Some(prefix) = &p.response_prefix {
        messages.push(json!({"role": "assistant", "content": prefix}));
        body["continue_final_message"] = json!(true);
        body["add_generation_prompt"] = json!(false);
    }
    body["messages"] = Value::Array(messages);
    body
}

/// Reads a successful response body into a [`GenOutput`].
pub fn parse_response(req: &GenRequest, body: &str, batch_time_sec: f64) -> Result<GenOutput, BackendError> {
    let bad = |what: &str| BackendError::Http(format!("{what} in the response: {}", excerpt(body)));
    let v: Value = serde_json::from_str(body).map_err(|_| bad("not JSON"))?;
    let choice = v.get("choices").and_then(|c| c.get(0)).ok_or_else(|| bad("no choices"))?;
    let content = match &choice["message"]["content"] {
        Value::String(s) => s.as_str(),
        Value::Null => "",
        _ => return Err(bad("message content is not a string")),
    };
    let stop_hit = choice.get("stop_reason").and_then(Value::as_str).filter(|s| req.params.stop.iter().any(|x| x == s));
    let finish = match (choice.get("finish_reason").and_then(Value::as_str), stop_hit) {
        (Some("length"), _) => FinishReason::Length,
        (_, Some(_)) => FinishReason::Stop,
        _ => FinishReason::EndToken,
    };
    let mut text = req.params.response_prefix.clone().unwrap_or_default();
    text.push_str(content);
    if let Some(stop) = stop_hit.filter(|s| !content.ends_with(*s)) {
        text.push_str(stop);
    }
    let usage = |k: &str| v["usage"][k].as_u64().unwrap_or(0) as usize;
    Ok(GenOutput {
        text,
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: usage("completion_tokens"),
        finish,
        batch_time_sec,
    })
}

/// The server's own words for a failed request: `error.message` of an OpenAI error body, else the body's start.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match &v["error"] {
            Value::String(s) => Some(s.clone()),
            e => e.get("message").and_then(Value::as_str).map(str::to_string),
        })
        .unwrap_or_else(|| excerpt(body))
}

fn excerpt(body: &str) -> String {
    let s: String = body.chars().take(300).collect();
    if s.len() < body.len() {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GenParams, Message};
    use std::sync::Arc;

    fn request(prefix: Option<&str>) -> GenRequest {
        GenRequest {
            messages: vec![Message { role: Role::User, content: "<image>\nDescribe.".into() }],
            images: vec![Arc::new(b"\x89PNG\r\n\x1a\nrest".to_vec())],
            params: GenParams { seed: Some(7), response_prefix: prefix.map(str::to_string), ..GenParams::default() },
        }
    }

    #[test]
    fn body_has_image_parts_sampling_and_stop() {
        let b = request_body("m", &request(None));
        assert_eq!(b["model"], "m");
        assert_eq!(b["seed"], 7);
        assert_eq!(b["stop"], json!(["</answer>"]));
        assert_eq!(b["max_tokens"], 2048);
        let parts = &b["messages"][0]["content"];
        assert_eq!(parts[0]["type"], "image_url");
        assert!(parts[0]["image_url"]["url"].as_str().unwrap().starts_with("data:image/png;base64,iVBORw0KGg"));
        assert_eq!(parts[1], json!({"type": "text", "text": "Describe."}));
        assert!(b.get("continue_final_message").is_none());
    }

    #[test]
    fn response_prefix_continues_an_assistant_message() {
        let b = request_body("m", &request(Some("<answer>")));
        assert_eq!(b["messages"][1], json!({"role": "assistant", "content": "<answer>"}));
        assert_eq!(b["continue_final_message"], true);
        assert_eq!(b["add_generation_prompt"], false);
    }

    #[test]
    fn response_puts_back_prefix_and_matched_stop() {
        let body = r#"{"choices":[{"message":{"content":"\nobj[0]{id,name}:\n"},"finish_reason":"stop","stop_reason":"</answer>"}],"usage":{"prompt_tokens":9,"completion_tokens":4}}"#;
        let out = parse_response(&request(Some("<answer>")), body, 0.5).unwrap();
        assert_eq!(out.text, "<answer>\nobj[0]{id,name}:\n</answer>");
        assert_eq!((out.prompt_tokens, out.completion_tokens, out.finish), (9, 4, FinishReason::Stop));
        let eos = r#"{"choices":[{"message":{"content":"x"},"finish_reason":"stop","stop_reason":null}]}"#;
        assert_eq!(parse_response(&request(None), eos, 0.0).unwrap().finish, FinishReason::EndToken);
        let len = r#"{"choices":[{"message":{"content":"x"},"finish_reason":"length"}]}"#;
        assert_eq!(parse_response(&request(None), len, 0.0).unwrap().finish, FinishReason::Length);
        assert!(parse_response(&request(None), "{}", 0.0).unwrap_err().to_string().contains("no choices"));
    }

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(error_message(r#"{"error":{"message":"no image","type":"invalid_request_error"}}"#), "no image");
        assert_eq!(error_message("plain text"), "plain text");
    }
}

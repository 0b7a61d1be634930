//! `POST /v1/scene-graph`: one image in, its scene graph out, with the dataset's prompt built server-side.
//!
//! The body is JSON (`{"image": base64 or data URL, "dataset": "psg"|"pvsg"|"ag", "prev": previous graph,
//! "constrained": bool, "max_new_tokens", "temperature", "seed", "response_prefix"}`) or a multipart form with the
//! same names (`image` as a file). The answer is post-processed as the runners do (`finalize_vl_prediction`) and
//! checked by the strict gate: `toon` is the text, `graph` its typed JSON form when valid, `error` the gate's
//! message when not.

use super::chat::{check_image, decode_image};
use super::error::ApiError;
use super::multipart;
use super::ServerConfig;
use crate::runner::finalize_vl_prediction;
use crate::{Constraint, FinishReason, GenOutput, GenParams, GenRequest, Message, Role};
use serde_json::{json, Value};
use sgvlm_data::prompts;
use sgvlm_graph::{strict, vocab, Schema, StrictConfig};
use std::sync::Arc;

/// The parsed request.
#[derive(Debug)]
pub struct SceneGraphRequest {
    pub dataset: String,
    pub schema: Schema,
    pub request: GenRequest,
}

/// One request field: its name, its value as JSON, and its raw bytes when it came from a multipart part.
type Field = (String, Value, Option<Vec<u8>>);

/// Reads a JSON body or a multipart form into named text/byte fields.
fn fields(content_type: &str, body: &[u8]) -> Result<Vec<Field>, ApiError> {
    if let Some(b) = multipart::boundary(content_type) {
        let parts = multipart::parse(body, &b).map_err(ApiError::bad_request)?;
        return Ok(parts
            .into_iter()
            .map(|f| {
                let text = String::from_utf8_lossy(&f.data).into_owned();
                (f.name, Value::String(text), Some(f.data))
            })
            .collect());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON: {e}")))?;
    let Value::Object(map) = v else { return Err(ApiError::bad_request("the body must be a JSON object")) };
    Ok(map.into_iter().map(|(k, v)| (k, v, None)).collect())
}

fn as_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "yes" | "on"),
        _ => false,
    }
}

fn as_number(key: &str, v: &Value) -> Result<f64, ApiError> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| ApiError::bad_request(format!("`{key}` must be a number")))
}

/// Builds the generation request.
pub fn parse_request(content_type: &str, body: &[u8], cfg: &ServerConfig) -> Result<SceneGraphRequest, ApiError> {
    let mut image: Option<Vec<u8>> = None;
    let mut dataset = "psg".to_string();
    let mut prev: Option<String> = None;
    let mut params = GenParams { max_new_tokens: cfg.default_max_new_tokens, ..GenParams::default() };
    let mut constrained = false;
    for (key, value, bytes) in fields(content_type, body)? {
        match key.as_str() {
            "image" => {
                image = Some(match (bytes, &value) {
                    (Some(raw), _) => {
                        check_image(&raw, 0)?;
                        raw
                    }
                    (None, Value::String(s)) => decode_image(s, 0)?,
                    _ => return Err(ApiError::bad_request("`image` must be a base64 string or data URL")),
                })
            }
            "dataset" => dataset = value.as_str().unwrap_or_default().to_lowercase(),
            "prev" => prev = value.as_str().map(str::to_string).filter(|s| !s.trim().is_empty()),
            "constrained" => constrained = as_bool(&value),
            "max_new_tokens" => params.max_new_tokens = as_number(&key, &value)? as usize,
            "temperature" => params.temperature = as_number(&key, &value)? as f32,
            "seed" => params.seed = Some(as_number(&key, &value)? as u64),
            "response_prefix" => params.response_prefix = value.as_str().map(|s| s.trim().to_string()),
            _ => {}
        }
    }
    let image =
        image.ok_or_else(|| ApiError::bad_request("no image: send `image` as base64, a data URL or a form file"))?;
    if params.max_new_tokens > cfg.max_new_tokens_limit {
        return Err(ApiError::bad_request(format!(
            "max_new_tokens {} exceeds this server's limit of {}",
            params.max_new_tokens, cfg.max_new_tokens_limit
        )));
    }
    let (prompt, schema) = match (dataset.as_str(), &prev) {
        ("psg", None) => (prompts::psg(prompts::PsgLabels::Sft), Schema::Triplet),
        ("psg", Some(_)) => return Err(ApiError::bad_request("`prev` applies to video datasets (pvsg, ag), not psg")),
        ("pvsg", None) => (prompts::pvsg_first(), Schema::Triplet),
        ("pvsg", Some(p)) => (prompts::pvsg_with_prev(p), Schema::Triplet),
        ("ag", None) => (prompts::ag_first(), Schema::Ag),
        ("ag", Some(p)) => (prompts::ag_follow(p), Schema::Ag),
        (other, _) => return Err(ApiError::bad_request(format!("unknown dataset {other:?} (psg, pvsg or ag)"))),
    };
    if constrained {
        let list = |items: &[&str]| Some(Arc::new(items.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        let (objects, predicates) = match dataset.as_str() {
            "psg" => (list(&vocab::PSG_OBJECT_CLASSES), list(&vocab::PSG_PREDICATES)),
            "ag" => (list(&vocab::AG_OBJECT_CLASSES), list(&vocab::AG_PREDICATES)),
            _ => (None, None),
        };
        params.constraint = Some(Constraint { schema, canvas: (640, 480), objects, predicates });
    }
    let request = GenRequest {
        messages: vec![Message { role: Role::User, content: prompt }],
        images: vec![Arc::new(image)],
        params,
    };
    Ok(SceneGraphRequest { dataset, schema, request })
}

/// The response body.
pub fn response_body(model: &str, req: &SceneGraphRequest, out: &GenOutput) -> Value {
    let toon = finalize_vl_prediction(&out.text);
    let parsed = strict::parse(&toon, req.schema, &StrictConfig::default());
    let (graph, error) = match parsed {
        Ok(g) => (serde_json::to_value(&g).unwrap_or(Value::Null), Value::Null),
        Err(e) => (Value::Null, json!(e.to_string())),
    };
    json!({
        "model": model,
        "dataset": req.dataset,
        "toon": toon,
        "valid": error.is_null(),
        "graph": graph,
        "error": error,
        "finish_reason": match out.finish { FinishReason::Length => "length", FinishReason::Stop => "stop", FinishReason::EndToken => "end_token" },
        "usage": {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens},
        "gen_time_sec": out.batch_time_sec,
    })
}

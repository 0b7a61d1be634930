//! An OpenAI-compatible chat-completions judge client: `POST {base_url}/chat/completions` with the system and user
//! messages, temperature 0 and the request's token limit; the verdict is parsed from `choices[0].message.content`.
//! Requests run on `concurrency` worker threads; transport errors, 429 and 5xx answers are retried with
//! exponential backoff; every request has a timeout. The API key, if any, is read from an environment variable
//! whose name is configurable (never from a flag, so it stays out of shell history).

use super::{prompts, Judge, JudgeError, JudgeRequest};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct OpenAiJudgeConfig {
    /// Base URL up to `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable holding the API key (`OPENAI_API_KEY` by default); unset = no key.
    pub api_key_env: String,
    pub concurrency: usize,
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub timeout: Duration,
}

impl OpenAiJudgeConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiJudgeConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: 8,
            max_retries: 4,
            initial_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
        }
    }
}

/// The client.
pub struct OpenAiJudge {
    cfg: OpenAiJudgeConfig,
    agent: ureq::Agent,
    api_key: Option<String>,
}

impl OpenAiJudge {
    pub fn new(cfg: OpenAiJudgeConfig) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::config::Config::builder().timeout_global(Some(cfg.timeout)).http_status_as_error(false).build(),
        );
        let api_key = std::env::var(&cfg.api_key_env).ok().filter(|k| !k.is_empty());
        OpenAiJudge { cfg, agent, api_key }
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.cfg.base_url.trim_end_matches('/'))
    }

    /// One request with retries; returns the verdict.
    fn ask(&self, req: &JudgeRequest) -> Result<bool, JudgeError> {
        let body = json!({
            "model": self.cfg.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "temperature": 0.0,
            "max_tokens": req.max_tokens,
        })
        .to_string();
        let mut backoff = self.cfg.initial_backoff;
        let mut last = String::new();
        let attempts = self.cfg.max_retries + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(backoff);
                backoff = backoff.saturating_mul(2);
            }
            let mut call = self.agent.post(&self.url()).header("Content-Type", "application/json");
            if let Some(k) = &self.api_key {
                call = call.header("Authorization", &format!("Bearer {k}"));
            }
            match call.send(body.as_str()) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 429 || status >= 500 {
                        last = format!("HTTP {status}: {}", text.chars().take(200).collect::<String>());
                        continue;
                    }
                    if status >= 400 {
                        // Client errors do not get better by retrying.
                        return Err(JudgeError::Exhausted {
                            attempts: attempt + 1,
                            last: format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
                        });
                    }
                    let v: Value = serde_json::from_str(&text).map_err(|e| {
                        JudgeError::BadResponse(format!("{e}: {}", text.chars().take(200).collect::<String>()))
                    })?;
                    let content = v["choices"][0]["message"]["content"]
                        .as_str()
                        .ok_or_else(|| JudgeError::BadResponse(text.chars().take(200).collect()))?;
                    return Ok(prompts::parse_verdict(content));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(JudgeError::Exhausted { attempts, last })
    }
}

impl Judge for OpenAiJudge {
    fn judge(&self, requests: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError> {
        let results: Vec<Mutex<Option<Result<bool, JudgeError>>>> = requests.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.cfg.concurrency.clamp(1, requests.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(req) = requests.get(i) else { break };
                    let r = self.ask(req);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err(JudgeError::BadResponse("a worker thread panicked".into())))
            })
            .collect()
    }
}

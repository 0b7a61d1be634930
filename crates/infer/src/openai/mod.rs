//! [`OpenAiBackend`]: the [`Backend`] trait over an OpenAI-compatible chat-completions server (vLLM, SGLang,
//! mistral.rs, `sgvlm serve`) — the way to scale generation past one machine.
//!
//! A batch's requests run on up to `concurrency` threads at once, one HTTP request each. Transport errors,
//! timeouts, 429 and 5xx answers are retried with exponential backoff (a 429's `Retry-After` is honoured, capped
//! at a minute); other 4xx answers fail at once with the status and the server's message. The API key, if any, is
//! read from an environment variable (never a flag, so it stays out of shell history).

pub mod wire;

use crate::{Backend, BackendError, GenOutput, GenRequest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Connection settings.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL up to `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The served model name sent as `model`.
    pub model: String,
    /// Environment variable holding the API key; unset or empty = no `Authorization` header.
    pub api_key_env: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    /// Limit on one HTTP request, connection to last byte.
    pub timeout: Duration,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: "OPENAI_API_KEY".into(),
            concurrency: 16,
            max_retries: 4,
            initial_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
    }
}

/// The client.
pub struct OpenAiBackend {
    cfg: OpenAiConfig,
    agent: ureq::Agent,
    api_key: Option<String>,
}

/// The outcome of one attempt.
enum Attempt {
    Done(Result<GenOutput, BackendError>),
    Retry { error: BackendError, wait: Option<Duration> },
}

impl OpenAiBackend {
    pub fn new(cfg: OpenAiConfig) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::config::Config::builder().timeout_global(Some(cfg.timeout)).http_status_as_error(false).build(),
        );
        let api_key = std::env::var(&cfg.api_key_env).ok().filter(|k| !k.is_empty());
        OpenAiBackend { cfg, agent, api_key }
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.cfg.base_url.trim_end_matches('/'))
    }

    fn attempt(&self, req: &GenRequest, body: &str, batch_start: Instant) -> Attempt {
        let mut call = self.agent.post(&self.url()).header("Content-Type", "application/json");
        if let Some(k) = &self.api_key {
            call = call.header("Authorization", &format!("Bearer {k}"));
        }
        match call.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)));
                let text = match resp.body_mut().read_to_string() {
                    Ok(t) => t,
                    Err(e) => {
                        return Attempt::Retry {
                            error: BackendError::Http(format!("reading the body: {e}")),
                            wait: None,
                        }
                    }
                };
                let message = || format!("HTTP {status} from {}: {}", self.url(), wire::error_message(&text));
                match status {
                    200..=299 => Attempt::Done(wire::parse_response(req, &text, batch_start.elapsed().as_secs_f64())),
                    429 | 500..=599 => Attempt::Retry { error: BackendError::Http(message()), wait: retry_after },
                    400 | 413 | 422 => Attempt::Done(Err(BackendError::BadRequest(message()))),
                    _ => Attempt::Done(Err(BackendError::Http(message()))),
                }
            }
            Err(ureq::Error::Timeout(_)) => {
                Attempt::Retry { error: BackendError::Timeout(self.cfg.timeout.as_secs_f64()), wait: None }
            }
            Err(e) => Attempt::Retry { error: BackendError::Http(format!("{}: {e}", self.url())), wait: None },
        }
    }

    /// One request with retries.
    fn send(&self, req: &GenRequest, batch_start: Instant) -> Result<GenOutput, BackendError> {
        let body = wire::request_body(&self.cfg.model, req).to_string();
        let mut backoff = self.cfg.initial_backoff;
        let mut attempt = 0;
        loop {
            match self.attempt(req, &body, batch_start) {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, wait } => {
                    if attempt >= self.cfg.max_retries {
                        return Err(match error {
                            BackendError::Http(m) => {
                                BackendError::Http(format!("{m} (gave up after {} attempts)", attempt + 1))
                            }
                            other => other,
                        });
                    }
                    std::thread::sleep(wait.unwrap_or(backoff));
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }
}

impl Backend for OpenAiBackend {
    fn name(&self) -> &str {
        &self.cfg.model
    }

    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<GenOutput, BackendError>> {
        let start = Instant::now();
        let slots: Vec<Mutex<Option<Result<GenOutput, BackendError>>>> =
            requests.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.cfg.concurrency.clamp(1, requests.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(req) = requests.get(i) else { break };
                    let result = self.send(req, start);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                });
            }
        });
        let batch_time = start.elapsed().as_secs_f64();
        slots
            .into_iter()
            .map(|slot| {
                let mut r = slot
                    .into_inner()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| Err(BackendError::Engine("a client thread panicked".into())));
                if let Ok(out) = &mut r {
                    out.batch_time_sec = batch_time;
                }
                r
            })
            .collect()
    }
}

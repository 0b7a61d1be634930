//! The HTTP server behind `sgvlm serve`: OpenAI-compatible `POST /v1/chat/completions`, `POST /v1/scene-graph`
//! (image in, graph JSON and TOON out), `GET /health`, over any `Arc<dyn Backend>`.
//!
//! Built on `tiny_http` with a pool of handler threads rather than axum + tokio: the [`Backend`] trait is blocking
//! and batches are the unit of work, so an async runtime would only wrap blocking calls, and tiny_http's few
//! dependencies keep the build light on this project's small machines. Concurrent requests meet in the
//! [`batcher`], which turns them into one `Backend::generate` call. Bad requests (bad JSON, no or undecodable
//! image, a body over `max_body_bytes`, more tokens than allowed, an unknown route) get a 4xx OpenAI-style error
//! JSON and the server keeps serving; a panic in a handler is caught and answered with a 500.

pub mod batcher;
mod chat;
pub mod error;
pub mod multipart;
mod scene_graph;

use crate::Backend;
use batcher::Batcher;
use error::ApiError;
use serde_json::{json, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Reported as `model` in responses and by `/health`.
    pub model_name: String,
    /// Most requests per `Backend::generate` call.
    pub max_batch: usize,
    /// How long the batcher waits for more requests after the first.
    pub batch_window: Duration,
    /// Handler threads (requests read and validated at once); at least `max_batch` so batches can fill.
    pub workers: usize,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `max_tokens` when a request gives none.
    pub default_max_new_tokens: usize,
    /// Requests asking for more new tokens are refused with 400.
    pub max_new_tokens_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            model_name: "sgvlm".into(),
            max_batch: 16,
            batch_window: Duration::from_millis(5),
            workers: 32,
            max_body_bytes: 32 << 20,
            default_max_new_tokens: 2048,
            max_new_tokens_limit: 8192,
        }
    }
}

/// A running server; dropping it does not stop it (call [`RunningServer::stop`]).
pub struct RunningServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (useful after binding port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, the base URL for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Blocks until the server stops.
    pub fn wait(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }

    /// Stops accepting requests and waits for the handler threads.
    pub fn stop(self) {
        for _ in 0..self.handles.len() {
            self.server.unblock();
        }
        self.wait();
    }
}

/// Binds `addr` (e.g. `127.0.0.1:0`) and serves on background threads.
pub fn spawn(backend: Arc<dyn Backend>, cfg: ServerConfig, addr: &str) -> std::io::Result<RunningServer> {
    let server =
        tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(format!("failed to bind {addr}: {e}")))?;
    let bound =
        server.server_addr().to_ip().ok_or_else(|| std::io::Error::other(format!("{addr} is not an IP address")))?;
    let server = Arc::new(server);
    let batcher = Batcher::start(backend, cfg.max_batch, cfg.batch_window);
    let cfg = Arc::new(cfg);
    let ids = Arc::new(AtomicU64::new(0));
    let workers = cfg.workers.max(cfg.max_batch).max(1);
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let (server, batcher, cfg, ids) = (server.clone(), batcher.clone(), cfg.clone(), ids.clone());
        let handle = std::thread::Builder::new().name(format!("sgvlm-http-{i}")).spawn(move || {
            while let Ok(request) = server.recv() {
                serve_one(request, &batcher, &cfg, &ids);
            }
        })?;
        handles.push(handle);
    }
    Ok(RunningServer { server, addr: bound, handles })
}

fn serve_one(mut request: tiny_http::Request, batcher: &Batcher, cfg: &ServerConfig, ids: &AtomicU64) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| route(&mut request, batcher, cfg, ids)));
    let (status, body) = match outcome {
        Ok(Ok(v)) => (200, v.to_string()),
        Ok(Err(e)) => (e.status, e.body()),
        Err(_) => {
            let e = ApiError::new(500, "internal error while handling the request");
            (e.status, e.body())
        }
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]);
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = header {
        response = response.with_header(h);
    }
    // The client may have gone; nothing to do then.
    let _ = request.respond(response);
}

fn read_body(request: &mut tiny_http::Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, format!("request body over the limit of {limit} bytes"));
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad_request(format!("failed to read the body: {e}")))?;
    if body.len() > limit {
        return Err(too_large());
    }
    Ok(body)
}

fn content_type(request: &tiny_http::Request) -> String {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default()
}

fn route(
    request: &mut tiny_http::Request,
    batcher: &Batcher,
    cfg: &ServerConfig,
    ids: &AtomicU64,
) -> Result<Value, ApiError> {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    match (&method, path.as_str()) {
        (tiny_http::Method::Get, "/health") => Ok(json!({"status": "ok", "model": cfg.model_name})),
        (tiny_http::Method::Get, "/v1/models") => {
            Ok(json!({"object": "list", "data": [{"id": cfg.model_name, "object": "model", "owned_by": "sgvlm"}]}))
        }
        (tiny_http::Method::Post, "/v1/chat/completions") => {
            let body = read_body(request, cfg.max_body_bytes)?;
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("bad JSON: {e}")))?;
            let req = chat::parse_request(&v, cfg)?;
            let out = batcher.generate(req.clone())?;
            Ok(chat::response_body(ids.fetch_add(1, Ordering::Relaxed), &cfg.model_name, &req, &out))
        }
        (tiny_http::Method::Post, "/v1/scene-graph") => {
            let ct = content_type(request);
            let body = read_body(request, cfg.max_body_bytes)?;
            let req = scene_graph::parse_request(&ct, &body, cfg)?;
            let out = batcher.generate(req.request.clone())?;
            Ok(scene_graph::response_body(&cfg.model_name, &req, &out))
        }
        (_, "/health" | "/v1/models" | "/v1/chat/completions" | "/v1/scene-graph") => {
            Err(ApiError::new(405, format!("{method} is not allowed on {path}")))
        }
        _ => Err(ApiError::new(404, format!("no route {method} {path}"))),
    }
}

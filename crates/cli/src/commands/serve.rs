//! `sgvlm serve`: the OpenAI-compatible server (`/v1/chat/completions`, `/v1/scene-graph`, `/health`) over a
//! backend, batching concurrent requests. Prints one JSON line with the bound address on stdout once listening.

use super::backend_args::BackendArgs;
use crate::output::Out;
use anyhow::Context;
use clap::Args;
use sgvlm_infer::server::{self, ServerConfig};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed on stdout).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Most requests per engine batch.
    #[arg(long, default_value_t = 16)]
    pub max_batch: usize,
    /// Milliseconds the batcher waits for more requests after the first.
    #[arg(long, default_value_t = 5)]
    pub batch_window_ms: u64,
    /// Largest accepted request body, in MiB.
    #[arg(long, default_value_t = 32)]
    pub max_body_mib: usize,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 8192)]
    pub max_new_tokens_limit: usize,
    /// Name reported as `model` (default: the model folder's name).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let backend = args.backend.build(args.max_batch)?;
    let cfg = ServerConfig {
        model_name: args.name.clone().unwrap_or_else(|| args.backend.model_name(backend.as_ref())),
        max_batch: args.max_batch.max(1),
        batch_window: Duration::from_millis(args.batch_window_ms),
        workers: (args.max_batch * 2).max(8),
        max_body_bytes: args.max_body_mib << 20,
        max_new_tokens_limit: args.max_new_tokens_limit,
        ..ServerConfig::default()
    };
    let addr = format!("{}:{}", args.host, args.port);
    let running = server::spawn(backend, cfg, &addr).with_context(|| format!("Failed to serve on {addr}"))?;
    eprintln!("serving on http://{} (POST /v1/chat/completions, POST /v1/scene-graph, GET /health)", running.addr());
    let mut out = Out::new();
    out.line(
        &serde_json::json!({"listening": running.addr().to_string(), "base_url": running.base_url()}).to_string(),
    )?;
    out.flush()?;
    running.wait();
    Ok(ExitCode::SUCCESS)
}

//! Choosing a generation backend on the command line: the native model (`--model DIR`) or an OpenAI-compatible
//! server (`--url URL --served-model NAME`), shared by `infer`, `video` and `serve`.

use super::generate::DeviceArg;
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sgvlm_infer::native::NativeBackend;
use sgvlm_infer::openai::{OpenAiBackend, OpenAiConfig};
use sgvlm_infer::runner::Progress;
use sgvlm_infer::Backend;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// A model directory (config.json, tokenizer.json, *.safetensors) run by the native engine.
    #[arg(long, value_name = "DIR", conflicts_with = "url", required_unless_present_any = ["url", "fake"])]
    pub model: Option<PathBuf>,
    /// Base URL of an OpenAI-compatible server up to `/v1` (vLLM, SGLang, mistral.rs, `sgvlm serve`); the API key,
    /// if any, is read from the variable named by `--api-key-env`.
    #[arg(long, value_name = "URL", requires = "served_model")]
    pub url: Option<String>,
    /// The model name the server knows (sent as `model`).
    #[arg(long, value_name = "NAME")]
    pub served_model: Option<String>,
    /// Environment variable holding the server's API key.
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// HTTP requests in flight at once (`--url`).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds one HTTP request may take, retries not counted (`--url`).
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Retries of a request after a transport error, 429 or 5xx, with exponential backoff from 2 s (`--url`).
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Where the native model runs (`--model`).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Dry run: a deterministic fake backend that answers every image with a small valid graph (smoke tests).
    #[arg(long, hide = true, conflicts_with_all = ["model", "url"])]
    pub fake: bool,
}

impl BackendArgs {
    /// The backend; `max_batch` bounds the native engine's batch.
    pub fn build(&self, max_batch: usize) -> anyhow::Result<Arc<dyn Backend>> {
        if self.fake {
            return Ok(Arc::new(sgvlm_infer::fake::FakeBackend::new()));
        }
        if let Some(url) = &self.url {
            let mut cfg = OpenAiConfig::new(url.clone(), self.served_model.clone().unwrap_or_default());
            cfg.api_key_env = self.api_key_env.clone();
            cfg.concurrency = self.concurrency.max(1);
            cfg.timeout = Duration::from_secs_f64(self.timeout.max(0.001));
            cfg.max_retries = self.retries;
            return Ok(Arc::new(OpenAiBackend::new(cfg)));
        }
        match &self.model {
            Some(dir) => {
                let backend = NativeBackend::from_dir(dir, self.device.options(max_batch.max(1))?)
                    .with_context(|| format!("Failed to load the model from `{}`", dir.display()))?;
                Ok(Arc::new(backend))
            }
            None => bail!("give --model DIR or --url URL"),
        }
    }

    /// The `model_name` written into output rows.
    pub fn model_name(&self, backend: &dyn Backend) -> String {
        match (&self.model, &self.served_model) {
            (Some(dir), _) => {
                dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| backend.name().into())
            }
            (None, Some(name)) => name.clone(),
            _ => backend.name().to_string(),
        }
    }
}

/// A progress bar on stderr.
pub struct Bar(pub ProgressBar);

impl Bar {
    pub fn new(prefix: &str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        Bar(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total: u64, done: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
        self.0.reset_eta();
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

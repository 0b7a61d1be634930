//! A deterministic stand-in backend for tests, dry runs and server smoke checks: it answers every image request
//! with a valid scene graph derived from the prompt and image bytes (so a changed prompt changes the answer), and
//! can be told to fail, to sleep, or to answer judge questions by a rule. It checks what a real engine checks:
//! images must decode, the prompt must fit `max_prompt_tokens`, and stop strings and `max_new_tokens` apply.

use crate::{Backend, BackendError, FinishReason, GenOutput, GenRequest};
use sgvlm_graph::toon::{self, Layout};
use sgvlm_graph::{AgGraph, AgPair, BBox, Object, Relation, TripletGraph};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type JudgeRule = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The fake backend; configure with the builder methods.
#[derive(Clone)]
pub struct FakeBackend {
    name: String,
    fail_marker: Option<String>,
    delay: Duration,
    judge: Option<JudgeRule>,
    /// Prompt "tokens" (whitespace-separated words, plus 64 per image) allowed.
    pub max_prompt_tokens: usize,
    calls: Arc<AtomicUsize>,
    batch_sizes: Arc<Mutex<Vec<usize>>>,
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeBackend {
    pub fn new() -> Self {
        FakeBackend {
            name: "fake".into(),
            fail_marker: None,
            delay: Duration::ZERO,
            judge: None,
            max_prompt_tokens: 8192,
            calls: Arc::default(),
            batch_sizes: Arc::default(),
        }
    }

    /// Requests whose user text contains `marker` fail with an engine error.
    pub fn failing_when(mut self, marker: &str) -> Self {
        self.fail_marker = Some(marker.to_string());
        self
    }

    /// Every `generate` call sleeps this long first.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Requests without images (judge questions) are answered by `rule(user text)`.
    pub fn with_judge(mut self, rule: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.judge = Some(Arc::new(rule));
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// How many `generate` calls were made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The batch size of every `generate` call so far.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn one(&self, req: &GenRequest, batch_time: f64) -> Result<GenOutput, BackendError> {
        let user: String = req.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n");
        if self.fail_marker.as_ref().is_some_and(|m| user.contains(m.as_str())) {
            return Err(BackendError::Engine("fake failure (the prompt holds the failure marker)".into()));
        }
        let mut hash = Fnv::default();
        hash.write(user.as_bytes());
        for (index, image) in req.images.iter().enumerate() {
            image::ImageReader::new(std::io::Cursor::new(image.as_slice()))
                .with_guessed_format()
                .map_err(|e| BackendError::Image { index, message: e.to_string() })?
                .into_dimensions()
                .map_err(|e| BackendError::Image { index, message: e.to_string() })?;
            hash.write(image);
        }
        let prompt_tokens = user.split_whitespace().count() + 64 * req.images.len();
        if prompt_tokens > self.max_prompt_tokens {
            return Err(BackendError::TooLong { tokens: prompt_tokens, limit: self.max_prompt_tokens });
        }
        let body = match (&self.judge, req.images.is_empty()) {
            (Some(rule), true) => rule(&user),
            _ if user.contains("rel_pairs") => ag_answer(hash.0),
            _ => triplet_answer(hash.0),
        };
        let prefix = req.params.response_prefix.clone().unwrap_or_default();
        let mut text = if body.starts_with(&prefix) { body } else { format!("{prefix}{body}") };
        let mut finish = FinishReason::EndToken;
        if let Some(end) = req.params.stop.iter().filter_map(|s| text.find(s.as_str()).map(|i| i + s.len())).min() {
            text.truncate(end);
            finish = FinishReason::Stop;
        }
        // One "token" per 4 bytes.
        let limit = req.params.max_new_tokens.saturating_mul(4);
        if text.len() > limit {
            let mut cut = limit;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            finish = FinishReason::Length;
        }
        Ok(GenOutput {
            completion_tokens: text.len().div_ceil(4),
            text,
            prompt_tokens,
            finish,
            batch_time_sec: batch_time,
        })
    }
}

impl Backend for FakeBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, requests: &[GenRequest]) -> Vec<Result<GenOutput, BackendError>> {
        let t0 = Instant::now();
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut sizes) = self.batch_sizes.lock() {
            sizes.push(requests.len());
        }
        std::thread::sleep(self.delay);
        let elapsed = t0.elapsed().as_secs_f64();
        requests.iter().map(|r| self.one(r, elapsed)).collect()
    }
}

/// FNV-1a, enough to make answers depend on their inputs.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn boxes(h: u64) -> (BBox, BBox) {
    let a = (h % 200) as i64;
    let b = ((h >> 16) % 200) as i64;
    (BBox::new(a, b, a + 100 + (h >> 32) as i64 % 300, b + 150), BBox::new(b, a, b + 120, a + 90))
}

fn triplet_answer(h: u64) -> String {
    let (b1, b2) = boxes(h);
    let g = TripletGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: b1 },
            Object { id: 2, name: if h % 2 == 0 { "chair" } else { "table" }.into(), bbox: b2 },
        ],
        relations: vec![Relation { subj: 1, pred: "beside".into(), obj: 2 }],
    };
    let mut s = String::new();
    toon::write_triplet(&mut s, &g, &Layout::PAPER_TRIPLET);
    s
}

fn ag_answer(h: u64) -> String {
    let (b1, b2) = boxes(h);
    let g = AgGraph {
        objects: vec![
            Object { id: 1, name: "person".into(), bbox: b1 },
            Object { id: 2, name: "table".into(), bbox: b2 },
        ],
        pairs: vec![AgPair {
            subj: 1,
            attention: vec!["looking_at".into()],
            spatial: vec!["in_front_of".into()],
            contacting: vec!["touching".into()],
            obj: 2,
        }],
    };
    let mut s = String::new();
    toon::write_ag(&mut s, &g, &Layout::PAPER_AG);
    s
}

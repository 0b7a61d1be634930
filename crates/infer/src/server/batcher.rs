//! Turning concurrent HTTP requests into batched `Backend::generate` calls.
//!
//! Handler threads submit one request each and block on a reply channel. One batcher thread takes the first
//! waiting request, keeps collecting for `window` (or until `max_batch` are waiting), and runs them as one batch;
//! requests arriving meanwhile wait for the next batch. One thread keeps the backend to one batch at a time, which
//! is what a single accelerator wants.

use crate::{Backend, BackendError, GenOutput, GenRequest};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Reply = Sender<Result<GenOutput, BackendError>>;

/// The submitting side; cheap to clone, one per handler thread.
#[derive(Clone)]
pub struct Batcher {
    tx: Sender<(GenRequest, Reply)>,
}

impl Batcher {
    /// Starts the batcher thread; it ends when every [`Batcher`] clone is dropped.
    pub fn start(backend: Arc<dyn Backend>, max_batch: usize, window: Duration) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sgvlm-batcher".into())
            .spawn(move || run(backend.as_ref(), &rx, max_batch.max(1), window))
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("error: failed to start the batcher thread: {e}"));
        Batcher { tx }
    }

    /// Submits one request and waits for its result.
    pub fn generate(&self, request: GenRequest) -> Result<GenOutput, BackendError> {
        let (reply, answer) = mpsc::channel();
        self.tx.send((request, reply)).map_err(|_| BackendError::Engine("the batcher has stopped".into()))?;
        answer.recv().map_err(|_| BackendError::Engine("the batcher dropped the request".into()))?
    }
}

fn run(backend: &dyn Backend, rx: &Receiver<(GenRequest, Reply)>, max_batch: usize, window: Duration) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + window;
        while batch.len() < max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(item) => batch.push(item),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let (requests, replies): (Vec<GenRequest>, Vec<Reply>) = batch.into_iter().unzip();
        let mut results = backend.generate(&requests).into_iter();
        for reply in replies {
            let result = results
                .next()
                .unwrap_or_else(|| Err(BackendError::Engine("the backend returned too few results".into())));
            // A handler that gave up (client gone) no longer listens; nothing to do then.
            let _ = reply.send(result);
        }
    }
}

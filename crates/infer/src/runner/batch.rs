//! One timed `Backend::generate` call, shared by the runners.

use crate::{Backend, BackendError, GenOutput, GenRequest};
use std::time::Instant;

/// The results (one per request, in order) and the amortised time per request in seconds.
pub(crate) fn generate_timed(
    backend: &dyn Backend,
    requests: &[GenRequest],
) -> (Vec<Result<GenOutput, BackendError>>, f64) {
    if requests.is_empty() {
        return (Vec::new(), 0.0);
    }
    let t0 = Instant::now();
    let mut results = backend.generate(requests);
    let per = t0.elapsed().as_secs_f64() / requests.len() as f64;
    let got = results.len();
    if got != requests.len() {
        results.truncate(requests.len());
        while results.len() < requests.len() {
            results.push(Err(BackendError::Engine(format!(
                "the backend returned {got} results for {} requests",
                requests.len()
            ))));
        }
    }
    (results, per)
}

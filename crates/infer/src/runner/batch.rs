//! One timed `Backend::generate` call, shared by the runners, and the reference's `--auto-obj-prefix-fallback`.

use super::finalize::{finalize_vl_prediction, has_obj_header};
use crate::{Backend, BackendError, GenOutput, GenRequest};
use std::time::Instant;

/// The response prefix the fallback forces.
const OBJ_PREFIX: &str = "obj[";

/// The reference's `--auto-obj-prefix-fallback` (§6.1): every successful answer whose finalized text has no
/// `obj[N]{id,name` header is asked again with the response prefix `obj[`; the retry's text replaces the answer
/// only if it has the header, and a failed retry is ignored. Not applied when the run's own prefix is already
/// `obj[`. The retries go in one `generate` call (the reference sends them one by one: the same greedy answers);
/// as there, their time is not part of `gen_time_sec`. Returns how many answers were replaced.
pub(crate) fn obj_prefix_fallback(
    backend: &dyn Backend,
    requests: &[GenRequest],
    results: &mut [Result<GenOutput, BackendError>],
) -> usize {
    let mut retry_of = Vec::new();
    let mut retries = Vec::new();
    for (i, (req, result)) in requests.iter().zip(results.iter()).enumerate() {
        let Ok(out) = result else { continue };
        if req.params.response_prefix.as_deref() == Some(OBJ_PREFIX)
            || has_obj_header(&finalize_vl_prediction(&out.text))
        {
            continue;
        }
        let mut retry = req.clone();
        retry.params.response_prefix = Some(OBJ_PREFIX.to_string());
        retries.push(retry);
        retry_of.push(i);
    }
    if retries.is_empty() {
        return 0;
    }
    let mut replaced = 0;
    for (i, answer) in retry_of.into_iter().zip(backend.generate(&retries)) {
        if let (Ok(answer), Ok(out)) = (answer, &mut results[i]) {
            if has_obj_header(&finalize_vl_prediction(&answer.text)) {
                out.text = answer.text;
                replaced += 1;
            }
        }
    }
    replaced
}

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

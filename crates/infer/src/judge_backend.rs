//! The eval crate's LLM judge on any [`Backend`]: the soft evaluation can then run its judge on the native model
//! or on a remote server through [`crate::openai::OpenAiBackend`], without a second HTTP client.

use crate::runner::finalize::strip_thinking_suffix;
use crate::{Backend, GenParams, GenRequest, Message, Role};
use sgvlm_eval::judge::{prompts, Judge, JudgeError, JudgeRequest};
use std::sync::Arc;

/// A [`Judge`] that sends each question as a system + user chat to a backend (temperature 0, the request's token
/// limit, no stop string) and reads the verdict with the reference's rule, after dropping any thinking block.
pub struct BackendJudge {
    backend: Arc<dyn Backend>,
    /// Questions per `Backend::generate` call (the reference's `--batch-size-qwen` is 32).
    pub batch_size: usize,
}

impl BackendJudge {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        BackendJudge { backend, batch_size: 32 }
    }
}

impl Judge for BackendJudge {
    fn judge(&self, requests: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError> {
        let mut verdicts = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(self.batch_size.max(1)) {
            let gen: Vec<GenRequest> = chunk
                .iter()
                .map(|r| GenRequest {
                    messages: vec![
                        Message { role: Role::System, content: r.system.clone() },
                        Message { role: Role::User, content: r.user.clone() },
                    ],
                    images: Vec::new(),
                    params: GenParams {
                        max_new_tokens: r.max_tokens as usize,
                        temperature: 0.0,
                        stop: Vec::new(),
                        ..GenParams::default()
                    },
                })
                .collect();
            for result in self.backend.generate(&gen) {
                let out = result.map_err(|e| JudgeError::Failed(e.to_string()))?;
                verdicts.push(prompts::parse_verdict(&strip_thinking_suffix(&out.text)));
            }
        }
        if verdicts.len() != requests.len() {
            return Err(JudgeError::BadResponse(format!(
                "the backend answered {} of {} questions",
                verdicts.len(),
                requests.len()
            )));
        }
        Ok(verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeBackend;

    #[test]
    fn verdicts_follow_the_backends_answers() {
        // The fake answers a judge question (no image) with its `judge_answer`, here from the user text.
        let backend = FakeBackend::new().with_judge(|user| if user.contains("'cat'") { "1" } else { "0" }.to_string());
        let judge = BackendJudge::new(Arc::new(backend));
        let reqs = vec![JudgeRequest::object("cat", "kitten", "s", "s"), JudgeRequest::object("dog", "car", "s", "s")];
        assert_eq!(judge.judge(&reqs).unwrap(), vec![true, false]);
    }

    #[test]
    fn a_failed_request_is_an_error() {
        let backend = FakeBackend::new().failing_when("'dog'");
        let judge = BackendJudge::new(Arc::new(backend));
        let err = judge.judge(&[JudgeRequest::object("dog", "car", "s", "s")]).unwrap_err();
        assert!(err.to_string().contains("fake failure"), "{err}");
    }
}

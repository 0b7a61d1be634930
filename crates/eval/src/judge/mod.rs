//! The LLM judge of the soft evaluation protocol (§6.2 of the reference facts): disputed object labels and
//! relation predicates are put to a judge model, which answers 1 (equivalent) or 0.
//!
//! [`Judge`] is the seam; this crate owns no model and no HTTP client. `sgvlm_infer::judge_backend::BackendJudge`
//! implements it over any inference backend: the OpenAI-compatible client (vLLM, SGLang, mistral.rs, hosted APIs;
//! what `sgvlm eval --judge-url` uses) or the native model. The prompts and the verdict rule are the reference's,
//! verbatim ([`prompts`]).

pub mod prompts;

/// One question for the judge: a system prompt, a user prompt and a generation limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeRequest {
    pub system: String,
    pub user: String,
    pub max_tokens: u32,
}

impl JudgeRequest {
    /// An object-label dispute with full-scene context.
    pub fn object(gt_term: &str, pred_term: &str, gt_summary: &str, pred_summary: &str) -> Self {
        JudgeRequest {
            system: prompts::SYSTEM_SYNONYM.to_string(),
            user: prompts::object_prompt(gt_term, pred_term, gt_summary, pred_summary),
            max_tokens: prompts::OBJECT_MAX_TOKENS,
        }
    }

    /// A relation dispute with full-scene context.
    pub fn relation(gt: (&str, &str, &str), pred: (&str, &str, &str), gt_summary: &str, pred_summary: &str) -> Self {
        JudgeRequest {
            system: prompts::SYSTEM_TRIPLET.to_string(),
            user: prompts::relation_prompt(gt, pred, gt_summary, pred_summary),
            max_tokens: prompts::RELATION_MAX_TOKENS,
        }
    }
}

/// Why the judge could not answer.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The backend gave up on a request (its own retries included); the message is the backend's.
    #[error("judge request failed: {0}")]
    Failed(String),
    #[error("judge answered with an unexpected body: {0}")]
    BadResponse(String),
}

/// Something that answers judge requests: one verdict (`true` = equivalent) per request, in order.
pub trait Judge: Send + Sync {
    fn judge(&self, requests: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError>;
}

/// A judge that answers from a fixed rule — for tests and for dry runs.
pub struct FnJudge<F: Fn(&JudgeRequest) -> bool + Send + Sync>(pub F);

impl<F: Fn(&JudgeRequest) -> bool + Send + Sync> Judge for FnJudge<F> {
    fn judge(&self, requests: &[JudgeRequest]) -> Result<Vec<bool>, JudgeError> {
        Ok(requests.iter().map(&self.0).collect())
    }
}

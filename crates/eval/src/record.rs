//! One input row of an evaluation file: the ground truth, the prediction and the optional generation time, read
//! from a JSON line the way the reference scripts read it.
//!
//! The ground truth is `content` and the prediction `predict`. Where either is missing, the PSG/PVSG script falls
//! back on `conversations` (`from: "gpt"` for the ground truth, `from: "predict"` for the prediction) and then on
//! the first `messages` entry with `role: "assistant"` for the prediction. The Action Genome script reads only
//! `content` and `predict`; we apply the same fallbacks there, which changes nothing for files that carry those
//! two keys. A row contributes to the `time_sec` statistics when `gen_time_sec` is a number > 0 (Python's
//! `isinstance(t, (int, float))` also admits `true`, counted as 1).
//!
//! A line that is not a JSON object, or whose texts are missing or not strings, is a *bad line*: it still yields a
//! record (missing texts become `None`, scored as the reference scores missing inputs) and a [`RecordError`] the
//! caller reports and counts.

use serde_json::Value;

/// The inputs of one evaluated sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalRecord {
    /// Ground-truth text; `None` when missing, empty or not a string.
    pub gt: Option<String>,
    /// Predicted text; `None` when missing, empty or not a string.
    pub pred: Option<String>,
    /// `gen_time_sec` when it counts for the time statistics (a number > 0).
    pub gen_time_sec: Option<f64>,
}

/// Why an input line is bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("no ground truth (`content`, or a `conversations` turn from `gpt`)")]
    MissingGt,
    #[error("no prediction (`predict`, a `conversations` turn from `predict`, or an assistant message)")]
    MissingPred,
    #[error("`{0}` is not a string")]
    NotString(&'static str),
}

impl EvalRecord {
    /// A record from two texts.
    pub fn new(gt: &str, pred: &str) -> EvalRecord {
        EvalRecord { gt: Some(gt.to_string()), pred: Some(pred.to_string()), gen_time_sec: None }
    }

    /// Reads one JSON line; the first problem found, if any, comes with the (possibly partial) record.
    pub fn from_json_line(line: &str) -> (EvalRecord, Option<RecordError>) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => EvalRecord::from_value(&v),
            Err(e) => (EvalRecord::default(), Some(RecordError::NotJson(e.to_string()))),
        }
    }

    /// Reads a parsed JSON row.
    pub fn from_value(v: &Value) -> (EvalRecord, Option<RecordError>) {
        let Some(obj) = v.as_object() else {
            return (EvalRecord::default(), Some(RecordError::NotObject));
        };
        let mut err = None;
        let mut text = |v: Option<&Value>, name: &'static str| -> Option<String> {
            match v? {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some(s.clone()),
                _ => {
                    err.get_or_insert(RecordError::NotString(name));
                    None
                }
            }
        };
        let mut gt_v = obj.get("content").filter(|v| !v.is_null());
        let mut pred_v = obj.get("predict").filter(|v| !v.is_null());
        if gt_v.is_none() || pred_v.is_none() {
            for turn in obj.get("conversations").and_then(Value::as_array).into_iter().flatten() {
                match turn.get("from").and_then(Value::as_str) {
                    Some("gpt") if gt_v.is_none() => gt_v = turn.get("value").filter(|v| !v.is_null()),
                    Some("predict") if pred_v.is_none() => pred_v = turn.get("value").filter(|v| !v.is_null()),
                    _ => {}
                }
            }
        }
        if pred_v.is_none() {
            let messages = obj.get("messages").and_then(Value::as_array).into_iter().flatten();
            if let Some(m) = messages.into_iter().find(|m| m.get("role").and_then(Value::as_str) == Some("assistant")) {
                pred_v = m.get("content");
            }
        }
        let gt = text(gt_v, "content");
        let pred = text(pred_v, "predict");
        let gen_time_sec = match obj.get("gen_time_sec") {
            Some(Value::Number(n)) => n.as_f64().filter(|t| *t > 0.0),
            Some(Value::Bool(true)) => Some(1.0),
            _ => None,
        };
        if err.is_none() && gt_v.is_none() {
            err = Some(RecordError::MissingGt);
        }
        if err.is_none() && pred_v.is_none() {
            err = Some(RecordError::MissingPred);
        }
        (EvalRecord { gt, pred, gen_time_sec }, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> (EvalRecord, Option<RecordError>) {
        EvalRecord::from_json_line(line)
    }

    #[test]
    fn plain_and_fallback_fields() {
        let (r, e) = read(r#"{"content":"G","predict":"P","gen_time_sec":1.5}"#);
        assert_eq!((r.gt.as_deref(), r.pred.as_deref(), r.gen_time_sec, e), (Some("G"), Some("P"), Some(1.5), None));
        let (r, e) = read(
            r#"{"conversations":[{"from":"human","value":"Q"},{"from":"gpt","value":"G"}],"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"P"}]}"#,
        );
        assert_eq!((r.gt.as_deref(), r.pred.as_deref(), e), (Some("G"), Some("P"), None));
        let (r, _) = read(
            r#"{"content":"G","conversations":[{"from":"predict","value":"P1"}],"messages":[{"role":"assistant","content":"P2"}]}"#,
        );
        assert_eq!(r.pred.as_deref(), Some("P1"));
    }

    #[test]
    fn generation_times_as_the_reference_counts_them() {
        let t = |v: &str| read(&format!(r#"{{"content":"G","predict":"P","gen_time_sec":{v}}}"#)).0.gen_time_sec;
        assert_eq!([t("0"), t("-1.0"), t("null"), t("\"2\""), t("false")], [None; 5]);
        assert_eq!([t("2"), t("true"), t("0.25")], [Some(2.0), Some(1.0), Some(0.25)]);
    }

    #[test]
    fn bad_lines_still_give_a_record() {
        assert!(matches!(read("{oops"), (EvalRecord { gt: None, pred: None, .. }, Some(RecordError::NotJson(_)))));
        assert_eq!(read("[1]").1, Some(RecordError::NotObject));
        assert_eq!(read(r#"{"predict":"P"}"#).1, Some(RecordError::MissingGt));
        assert_eq!(read(r#"{"content":"G"}"#).1, Some(RecordError::MissingPred));
        let (r, e) = read(r#"{"content":"G","predict":7}"#);
        assert_eq!((r.pred, e), (None, Some(RecordError::NotString("predict"))));
        // An empty text is the reference's "missing input", not a bad line.
        assert_eq!(
            read(r#"{"content":"G","predict":""}"#),
            (EvalRecord { gt: Some("G".into()), ..Default::default() }, None)
        );
    }
}

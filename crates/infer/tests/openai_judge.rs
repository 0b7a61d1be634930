//! The soft evaluation's judge as `sgvlm eval --judge-url` builds it — [`BackendJudge`] over the OpenAI-compatible
//! client — against a real HTTP server on 127.0.0.1, started inside the test, that answers as a judge would
//! (bounded: it serves a fixed number of connections and stops). Also covers the client's API-key header and its
//! retry rules.

use sgvlm_eval::judge::{Judge, JudgeRequest};
use sgvlm_infer::judge_backend::BackendJudge;
use sgvlm_infer::openai::{OpenAiBackend, OpenAiConfig};
use sgvlm_testdata::chat_server::serve;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

fn config(url: &str) -> OpenAiConfig {
    OpenAiConfig {
        initial_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        api_key_env: "SGVLM_TEST_NO_SUCH_KEY".into(),
        ..OpenAiConfig::new(url, "judge-model")
    }
}

fn judge_over_http(cfg: OpenAiConfig) -> BackendJudge {
    BackendJudge::new(Arc::new(OpenAiBackend::new(cfg)))
}

#[test]
fn verdicts_in_order_with_concurrency() {
    // Answers 1 when the two labels are chair/sofa, as a judge would, and 0 otherwise.
    let (url, seen) = serve(12, |_, body| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let user = v["messages"][1]["content"].as_str().unwrap();
        (200, if user.contains("'chair' (from GT) and 'sofa'") { " 1".into() } else { "0".into() })
    });
    let judge = judge_over_http(OpenAiConfig { concurrency: 4, ..config(&url) });
    let reqs: Vec<JudgeRequest> = (0..12)
        .map(|i| {
            JudgeRequest::object("chair", if i % 3 == 0 { "sofa" } else { "table" }, "Objects: . Relations: ", "x")
        })
        .collect();
    let got = judge.judge(&reqs).expect("judge answers");
    let want: Vec<bool> = (0..12).map(|i| i % 3 == 0).collect();
    assert_eq!(got, want);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 12);
    let v: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(v["model"], "judge-model");
    assert_eq!(v["temperature"], 0.0);
    assert_eq!(v["max_tokens"], 8);
    assert!(v["messages"][0]["content"]
        .as_str()
        .unwrap()
        .starts_with("You are a judge for scene graph evaluation. \n"));
    assert_eq!(seen[0].0, "", "no API key configured, no header");
}

#[test]
fn retries_server_errors_then_succeeds_and_sends_the_key() {
    let (url, seen) = serve(3, |n, _| if n < 2 { (503, "busy".into()) } else { (200, "1".into()) });
    // SAFETY of the test: the variable name is unique to this test.
    std::env::set_var("SGVLM_TEST_JUDGE_KEY", "sk-test");
    let judge = judge_over_http(OpenAiConfig { api_key_env: "SGVLM_TEST_JUDGE_KEY".into(), ..config(&url) });
    let req = JudgeRequest::relation(("adult", "on", "chair"), ("adult", "sitting on", "chair"), "a", "b");
    assert_eq!(judge.judge(&[req]).expect("third attempt succeeds"), vec![true]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(auth, _)| auth == "Bearer sk-test"));
}

#[test]
fn gives_up_with_a_clear_error() {
    let (url, _) = serve(3, |_, _| (500, "down".into()));
    let judge = judge_over_http(OpenAiConfig { max_retries: 2, ..config(&url) });
    let err = judge.judge(&[JudgeRequest::object("a", "b", "", "")]).unwrap_err().to_string();
    assert!(err.starts_with("judge request failed: http: HTTP 500"), "{err}");
    assert!(err.ends_with("(gave up after 3 attempts)"), "{err}");

    let (url, seen) = serve(1, |_, _| (400, "bad model".into()));
    let err = judge_over_http(config(&url)).judge(&[JudgeRequest::object("a", "b", "", "")]).unwrap_err().to_string();
    assert!(err.contains("HTTP 400"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1, "client errors are not retried");

    // Nothing listens on this port: a transport error, retried, then reported.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = judge_over_http(OpenAiConfig { max_retries: 1, ..config(&format!("http://{free}/v1")) })
        .judge(&[JudgeRequest::object("a", "b", "", "")])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("judge request failed: http: "), "{err}");
    assert!(err.ends_with("(gave up after 2 attempts)"), "{err}");
}

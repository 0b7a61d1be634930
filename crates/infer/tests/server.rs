//! The server on 127.0.0.1:0 with the fake backend, driven by the OpenAI client backend and by raw HTTP.

use base64::Engine as _;
use serde_json::{json, Value};
use sgvlm_infer::fake::FakeBackend;
use sgvlm_infer::openai::{OpenAiBackend, OpenAiConfig};
use sgvlm_infer::server::{spawn, RunningServer, ServerConfig};
use sgvlm_infer::{Backend, BackendError, FinishReason, GenParams, GenRequest, Message, Role};
use std::sync::Arc;
use std::time::Duration;

fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([shade, 100, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn start(backend: FakeBackend, cfg: ServerConfig) -> RunningServer {
    spawn(Arc::new(backend), cfg, "127.0.0.1:0").unwrap()
}

fn client(server: &RunningServer) -> OpenAiBackend {
    let mut cfg = OpenAiConfig::new(server.base_url(), "fake");
    cfg.initial_backoff = Duration::from_millis(10);
    cfg.max_retries = 1;
    cfg.timeout = Duration::from_secs(20);
    OpenAiBackend::new(cfg)
}

fn image_request(prompt: &str, shade: u8) -> GenRequest {
    GenRequest {
        messages: vec![Message { role: Role::User, content: format!("<image>\n{prompt}") }],
        images: vec![Arc::new(png(32, 24, shade))],
        params: GenParams { response_prefix: Some("<answer>".into()), ..GenParams::default() },
    }
}

fn post(url: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let agent = ureq::Agent::new_with_config(ureq::config::Config::builder().http_status_as_error(false).build());
    let mut resp = agent.post(url).header("Content-Type", content_type).send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn the_client_through_the_server_equals_the_backend_itself() {
    let fake = FakeBackend::new();
    let server = start(fake.clone(), ServerConfig::default());
    let remote = client(&server);
    let requests: Vec<GenRequest> = (0..6).map(|i| image_request(&format!("scene {i}"), i as u8 * 30)).collect();
    let direct = fake.generate(&requests);
    let via_http = remote.generate(&requests);
    for (d, h) in direct.iter().zip(&via_http) {
        let (d, h) = (d.as_ref().unwrap(), h.as_ref().unwrap());
        assert_eq!(h.text, d.text, "prefix and stop string survive the round trip");
        assert!(h.text.starts_with("<answer>") && h.text.ends_with("</answer>"));
        assert_eq!(
            (h.finish, h.prompt_tokens, h.completion_tokens),
            (FinishReason::Stop, d.prompt_tokens, d.completion_tokens)
        );
    }
    server.stop();
}

#[test]
fn concurrent_requests_are_batched() {
    let fake = FakeBackend::new().with_delay(Duration::from_millis(150));
    let cfg = ServerConfig { max_batch: 8, batch_window: Duration::from_millis(100), ..ServerConfig::default() };
    let server = start(fake.clone(), cfg);
    let remote = client(&server);
    let requests: Vec<GenRequest> = (0..8).map(|i| image_request("batch me", i as u8)).collect();
    assert!(remote.generate(&requests).iter().all(Result::is_ok));
    let sizes = fake.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 8);
    assert!(sizes.len() < 8, "8 concurrent requests must share batches, got {sizes:?}");
    server.stop();
}

#[test]
fn bad_requests_get_4xx_json_and_the_server_keeps_serving() {
    let server = start(FakeBackend::new(), ServerConfig { max_body_bytes: 200_000, ..ServerConfig::default() });
    let chat = format!("{}/chat/completions", server.base_url());
    let sg = format!("{}/scene-graph", server.base_url());
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"not an image at all");
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (&chat, "application/json", b"{not json".to_vec(), 400, "bad JSON"),
        (&sg, "application/json", br#"{"dataset":"psg"}"#.to_vec(), 400, "no image"),
        (&sg, "application/json", json!({"image": garbage}).to_string().into_bytes(), 400, "not a decodable"),
        (&sg, "application/json", vec![b' '; 300_000], 413, "over the limit"),
        (
            &chat,
            "application/json",
            json!({"messages":[{"role":"user","content":"hi"}],"max_tokens":100000}).to_string().into_bytes(),
            400,
            "exceeds this server's limit",
        ),
        (
            &sg,
            "application/json",
            json!({"image": base64::engine::general_purpose::STANDARD.encode(png(8, 8, 1)), "dataset": "coco"})
                .to_string()
                .into_bytes(),
            400,
            "unknown dataset",
        ),
    ];
    for (url, ct, body, status, needle) in cases {
        let (got, v) = post(url, ct, &body);
        assert_eq!(got, status, "{needle}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    }
    // A prompt over the backend's limit is the backend's TooLong error, answered 400.
    let long = "word ".repeat(20_000);
    let (status, v) =
        post(&chat, "application/json", json!({"messages":[{"role":"user","content": long}]}).to_string().as_bytes());
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("exceeds the limit"));
    // Still serving.
    let health: Value = serde_json::from_str(
        &ureq::get(&format!("http://{}/health", server.addr())).call().unwrap().body_mut().read_to_string().unwrap(),
    )
    .unwrap();
    assert_eq!(health["status"], "ok");
    server.stop();
}

#[test]
fn scene_graph_route_returns_a_valid_graph_from_json_and_multipart() {
    let server = start(FakeBackend::new(), ServerConfig::default());
    let url = format!("{}/scene-graph", server.base_url());
    let img = png(64, 48, 9);
    let (status, v) = post(
        &url,
        "application/json",
        json!({"image": format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&img)), "dataset": "ag"}).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["graph"]["schema"], "ag");
    assert!(v["toon"].as_str().unwrap().contains("rel_pairs["));

    let mut form = b"--B0\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n\r\n".to_vec();
    form.extend_from_slice(&img);
    form.extend_from_slice(b"\r\n--B0\r\nContent-Disposition: form-data; name=\"dataset\"\r\n\r\npsg\r\n--B0--\r\n");
    let (status, v) = post(&url, "multipart/form-data; boundary=B0", &form);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["graph"]["schema"], "triplet");
    server.stop();
}

#[test]
fn client_errors_name_the_status_and_the_servers_message_and_retries_give_up() {
    let server = start(FakeBackend::new(), ServerConfig::default());
    let remote = client(&server);
    let mut bad = image_request("x", 1);
    bad.images = vec![Arc::new(b"garbage".to_vec())];
    match &remote.generate(&[bad])[0] {
        Err(BackendError::BadRequest(m)) => assert!(m.contains("HTTP 400") && m.contains("image 0"), "{m}"),
        other => panic!("expected a 400, got {other:?}"),
    }
    let addr = server.addr();
    server.stop();
    // Nothing listens any more: transport errors are retried, then reported.
    let mut cfg = OpenAiConfig::new(format!("http://{addr}/v1"), "fake");
    cfg.initial_backoff = Duration::from_millis(5);
    cfg.max_retries = 2;
    match &OpenAiBackend::new(cfg).generate(&[image_request("x", 1)])[0] {
        Err(BackendError::Http(m)) => assert!(m.contains("gave up after 3 attempts"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
}

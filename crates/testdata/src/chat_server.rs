//! A bounded chat-completions server on 127.0.0.1 for tests of HTTP clients (the judge, the OpenAI-compatible
//! backend): it serves a fixed number of connections, one request each, and stops. Hand-written because the tests
//! need to script failures (status codes per request) and see the raw requests, which a mock-server crate would add a
//! dependency tree for.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server saw: (authorization header, request body).
pub type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let (mut len, mut auth) = (0usize, String::new());
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if lower.starts_with("authorization:") {
            auth = l["authorization:".len()..].trim().to_string();
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((auth, String::from_utf8(body).ok()?))
}

/// Serves `max_connections` requests; `respond(n, body)` gives (status, assistant content) for the n-th request,
/// answered as `{"choices": [{"message": {"role": "assistant", "content": …}}]}`. Returns the base URL (up to
/// `/v1`) and what the server saw.
pub fn serve(
    max_connections: usize,
    respond: impl Fn(usize, &str) -> (u16, String) + Send + Sync + 'static,
) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let seen: Seen = Arc::default();
    let (seen2, counter) = (seen.clone(), Arc::new(AtomicUsize::new(0)));
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_connections) {
            let Ok(mut stream) = stream else { continue };
            let (seen, counter, respond) = (seen2.clone(), counter.clone(), respond.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some((auth, body)) = read_request(&mut stream) else { return };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push((auth, body.clone()));
                let (status, content) = respond(n, &body);
                let payload = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
                    .to_string();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                    payload.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    (format!("http://{addr}/v1"), seen)
}

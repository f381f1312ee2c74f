//! sluice's own HTTP/1.1 server, driven with raw bytes on real sockets: pipelined requests,
//! `Expect: 100-continue`, HTTP/1.0 keep-alive, chunked request bodies, request bodies a
//! route never reads (drained or the connection closed), and the framings it must refuse.
mod common;
use common::*;
use sluice_echo::{Echo, Identity};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn setup() -> (sluice_proxy::Gateway, Echo, SocketAddr) {
    let echo = Echo::start(
        "127.0.0.1:0".parse().unwrap(),
        Identity::new("app", "v1", "app-1"),
    )
    .await
    .unwrap();
    let gw = gateway_to_backend(echo.addr, "", test_options());
    let addr = gw.local_addr(80).unwrap();
    (gw, echo, addr)
}

/// One response read from `s`: its head and its body (by content-length or chunked).
async fn response(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let lower = head.to_ascii_lowercase();
            let body_start = end + 4;
            if lower.starts_with("http/1.1 100 ") {
                pending.drain(..body_start);
                return Some((head, Vec::new()));
            }
            if let Some(n) = lower
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map(|n| n.trim().parse::<usize>().unwrap())
            {
                if pending.len() >= body_start + n {
                    let body = pending[body_start..body_start + n].to_vec();
                    pending.drain(..body_start + n);
                    return Some((head, body));
                }
            } else if lower.contains("transfer-encoding: chunked") {
                if let Some(e) = pending[body_start..]
                    .windows(5)
                    .position(|w| w == b"0\r\n\r\n")
                {
                    let raw = pending[body_start..body_start + e].to_vec();
                    pending.drain(..body_start + e + 5);
                    return Some((head, raw));
                }
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// Whether the server closes `s` within a second (reads nothing more).
async fn closes(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nhost: app.example\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (_gw, echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nhost: app.example\r\n\r\nGET /second HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    for path in ["/first", "/second"] {
        let (head, body) = response(&mut s, &mut pending).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("\r\ndate: "), "{head}");
        assert_eq!(json(&body)["path"], path);
    }
    s.write_all(GET).await.unwrap();
    assert!(response(&mut s, &mut pending).await.is_some());
    assert_eq!(echo.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_expecting_100_continue_gets_it_and_the_expectation_stops_here() {
    let (_gw, _echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PUT /up HTTP/1.1\r\nhost: app.example\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let (head, _) = response(&mut s, &mut pending).await.unwrap();
    assert_eq!(head, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let (head, body) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let seen = json(&body);
    assert_eq!(seen["body_bytes"], 5);
    assert!(seen["headers"].get("expect").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_clients_are_kept_alive_only_when_they_ask() {
    let (_gw, _echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /a HTTP/1.0\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let (head, body) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.contains("connection: close\r\n"), "{head}");
    assert_eq!(json(&body)["path"], "/a");
    assert!(closes(&mut s).await);

    let mut s = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /a HTTP/1.0\r\nhost: app.example\r\nconnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = response(&mut s, &mut pending).await.unwrap();
        assert!(head.contains("connection: keep-alive\r\n"), "{head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_bodies_arrive_whole_and_the_connection_goes_on() {
    let (_gw, _echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /c HTTP/1.1\r\nhost: app.example\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let (head, body) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(json(&body)["body_bytes"], 11);
    s.write_all(GET).await.unwrap();
    let (head, _) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_route_never_reads_is_drained_or_the_connection_closes() {
    let (_gw, echo, addr) = setup().await;
    // No route serves the asterisk form: 404 without reading the body. A small body that has
    // arrived is skipped and the connection carries the next request.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"OPTIONS * HTTP/1.1\r\nhost: app.example\r\ncontent-length: 4\r\n\r\nbody")
        .await
        .unwrap();
    let mut pending = Vec::new();
    let (head, _) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    s.write_all(GET).await.unwrap();
    let (head, _) = response(&mut s, &mut pending).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(echo.hits(), 1);
    // A body that has not arrived cannot be skipped: the answer comes, then the connection
    // closes (its next bytes would be read as a request otherwise).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"OPTIONS * HTTP/1.1\r\nhost: app.example\r\ncontent-length: 1000000\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut Vec::new()).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert!(closes(&mut s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framings_two_parsers_could_read_differently_get_400_and_a_close() {
    let (_gw, echo, addr) = setup().await;
    for bad in [
        &b"POST /a HTTP/1.1\r\nhost: app.example\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST /a HTTP/1.1\r\nhost: app.example\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nbody",
        b"POST /a HTTP/1.0\r\nhost: app.example\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /a HTTP/1.1\r\nhost: app.example\r\ntransfer-encoding: identity\r\n\r\nbody",
        b"GET /a HTTP/1.1\r\nhost: app.example\r\nx-folded: a\r\n b\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost : app.example\r\n\r\n",
        b"GET /a HTTP/1.1\r\nhost: app.example\r\nx: \x01\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bad).await.unwrap();
        let (head, _) = response(&mut s, &mut Vec::new()).await.unwrap();
        let shown = String::from_utf8_lossy(bad);
        assert!(head.starts_with("HTTP/1.1 400 "), "{shown:?} → {head}");
        assert!(head.contains("connection: close\r\n"), "{head}");
        assert!(closes(&mut s).await, "{shown:?}");
    }
    assert_eq!(echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_of_unknown_length_is_chunked_for_1_1_and_closes_for_1_0() {
    // The backend's body ends with its connection: the gateway cannot know the length.
    let backend = raw::raw_backend(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nstreamed",
        Duration::ZERO,
    )
    .await;
    let gw = gateway_to_backend(backend, "", test_options());
    let addr = gw.local_addr(80).unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    let (head, raw) = response(&mut s, &mut Vec::new()).await.unwrap();
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    assert_eq!(raw, b"8\r\nstreamed\r\n");

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /a HTTP/1.0\r\nhost: app.example\r\nconnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(all.contains("connection: close\r\n"), "{all}");
    assert!(!all.contains("transfer-encoding"), "{all}");
    assert!(all.ends_with("\r\n\r\nstreamed"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_closes_a_headers_timeout_after_its_last_response() {
    let echo = Echo::start(
        "127.0.0.1:0".parse().unwrap(),
        Identity::new("app", "v1", "app-1"),
    )
    .await
    .unwrap();
    let opts = sluice_proxy::ServerOptions {
        request_headers_timeout: Duration::from_millis(500),
        ..test_options()
    };
    let gw = gateway_to_backend(echo.addr, "", opts);
    let mut s = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut pending = Vec::new();
    s.write_all(GET).await.unwrap();
    assert!(response(&mut s, &mut pending).await.is_some());
    tokio::time::sleep_until(start + Duration::from_millis(300)).await;
    s.write_all(GET).await.unwrap();
    assert!(response(&mut s, &mut pending).await.is_some());
    // Past the first request's deadline, not yet past the second's: still open.
    tokio::time::sleep_until(start + Duration::from_millis(650)).await;
    let mut b = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(10), s.read(&mut b)).await;
    assert!(early.is_err(), "closed too early: {early:?}");
    // Then closed, without an answer.
    let closed = tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_list_reaches_the_backend_as_one_length() {
    let (_gw, _echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /a HTTP/1.1\r\nhost: app.example\r\ncontent-length: 5, 5\r\n\r\nhello")
        .await
        .unwrap();
    let (head, body) = response(&mut s, &mut Vec::new()).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let seen = json(&body);
    assert_eq!(seen["headers"]["content-length"], "5", "{seen}");
    assert_eq!(seen["body_bytes"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_the_answer_ends_its_request_as_dc() {
    let (gw, _echo, addr) = setup().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow?sleep_ms=5000 HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    // Recorded when the request is dropped, long before the backend would answer.
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(gw.metrics()));
    let mut text = String::new();
    for _ in 0..50 {
        text.clear();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        if text.contains("response_flags=\"DC\"") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no DC request recorded within a second:\n{text}");
}

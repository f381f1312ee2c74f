//! sluice's own HTTP/1.1 client against backends that answer with exact bytes: every framing
//! (length, chunked with trailers, until close), informational heads, HEAD, keep-alive reuse,
//! streamed request bodies, and the responses it must refuse.
mod common;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend that answers every request on a connection with `answer` (keeping the
/// connection open), and records connections and the requests' raw bytes.
struct Scripted {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    async fn start(answer: &'static [u8]) -> Scripted {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = vec![0u8; 65536];
                    loop {
                        // One request: its head, then its body by length or chunks.
                        let request = loop {
                            if let Some(n) = complete_request(&pending) {
                                break pending.drain(..n).collect::<Vec<u8>>();
                            }
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => pending.extend_from_slice(&buf[..n]),
                            }
                        };
                        r.lock().unwrap().push(request);
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Scripted {
            addr,
            connections,
            requests,
        }
    }

    fn request(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.requests.lock().unwrap()[i]).into_owned()
    }
}

/// The length of the first complete request in `b`.
fn complete_request(b: &[u8]) -> Option<usize> {
    let head = b.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&b[..head]).to_ascii_lowercase();
    if text.contains("transfer-encoding: chunked") {
        let end = b[head..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head + end + 5);
    }
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    (b.len() >= head + length).then_some(head + length)
}

fn to(addr: SocketAddr) -> sluice_proxy::Gateway {
    gateway_to_backend(addr, "\n      retries: {attempts: 0}", test_options())
}

async fn through(answer: &'static [u8], method: &str) -> (Reply, Scripted) {
    let backend = Scripted::start(answer).await;
    let gw = to(backend.addr);
    let reply = TestClient::http1(gw.local_addr(80).unwrap())
        .send(method, "app.example", "/x", &[], Bytes::new())
        .await;
    (reply, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framing_of_a_response_arrives_whole() {
    let (r, _) = through(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
        "GET",
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"hello world"[..]));
    assert!(
        !r.headers.contains_key("transfer-encoding") || r.headers["transfer-encoding"] == "chunked"
    );
    // No length: the body ends when the server closes the connection.
    let closing = raw::raw_backend(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end",
        Duration::ZERO,
    )
    .await;
    let gw = to(closing);
    let r = TestClient::http1(gw.local_addr(80).unwrap())
        .get("app.example", "/x")
        .await;
    assert_eq!(&r.body[..], b"until the end");
    let (r, _) = through(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        "GET",
    )
    .await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (201, &b"ok"[..]));
    // HEAD: the length names the body a GET would get; none follows.
    let (r, _) = through(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", "HEAD").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    assert_eq!(r.headers["content-length"], "9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_carry_the_next_requests() {
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let gw = to(backend.addr);
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for _ in 0..5 {
        assert_eq!(&client.get("app.example", "/x").await.body[..], b"ok");
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
    // A response that says close is not reused.
    let backend =
        Scripted::start(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
            .await;
    let gw = to(backend.addr);
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for _ in 0..3 {
        assert_eq!(&client.get("app.example", "/x").await.body[..], b"ok");
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 3);
    let head = backend.request(0);
    assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("host: app.example\r\n"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_go_out_sized_or_chunked() {
    let backend = Scripted::start(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let gw = to(backend.addr);
    let addr = gw.local_addr(80).unwrap();
    let client = TestClient::http1(addr);
    let r = client
        .send(
            "POST",
            "app.example",
            "/small",
            &[],
            Bytes::from_static(b"12345"),
        )
        .await;
    assert_eq!(r.status, 200);
    let small = backend.request(0);
    assert!(
        small.contains("content-length: 5\r\n") && small.ends_with("\r\n\r\n12345"),
        "{small}"
    );
    // A body larger than the retry buffer, of unknown length, streams through chunked.
    let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..40)
        .map(|_| Ok(Frame::data(Bytes::from(vec![b'a'; 4096]))))
        .collect();
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let req = hyper::Request::post(format!("http://{addr}/big"))
        .header("host", "app.example")
        .body(body)
        .unwrap();
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.unwrap();
    let big = backend.request(1);
    assert!(
        big.contains("transfer-encoding: chunked\r\n"),
        "{}",
        &big[..300]
    );
    let body = &big[big.find("\r\n\r\n").unwrap() + 4..];
    let decoded: usize = body
        .split("\r\n")
        .step_by(2)
        .map(|size| usize::from_str_radix(size, 16).unwrap_or(0))
        .sum();
    assert_eq!(decoded, 40 * 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_a_proxy_must_not_guess_at_are_refused() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nx-a: b\r\n folded\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nx a: b\r\ncontent-length: 2\r\n\r\nok",
        b"SMTP ready\r\n\r\n",
    ] {
        let (r, _) = through(bad, "GET").await;
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(bad));
    }
    let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70_000));
    huge.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
    let (r, _) = through(Box::leak(huge.into_boxed_slice()), "GET").await;
    assert_eq!(r.status, 503);
    // A body cut short: the client sees the error, not a shorter body as if complete.
    let backend = raw_short().await;
    let gw = to(backend);
    let resp = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>()
        .request(
            hyper::Request::get(format!("http://{}/", gw.local_addr(80).unwrap()))
                .header("host", "app.example")
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
            .await
            .unwrap()
            .is_err()
    );
}

/// Announces 10 bytes, sends 3, closes.
async fn raw_short() -> SocketAddr {
    raw::raw_backend(
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
        Duration::ZERO,
    )
    .await
}

/// A server that answers before the request body ended leaves its connection mid-request: the
/// next request must go on another connection (this backend answers one request per
/// connection, so a reused connection would never answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_a_streamed_body_retires_the_connection() {
    let backend = raw::raw_backend(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        Duration::from_secs(10),
    )
    .await;
    let gw = to(backend);
    let addr = gw.local_addr(80).unwrap();
    // More than the retry buffer, so the body streams; the rest only after the answer.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(4);
    for _ in 0..2 {
        tx.send(Ok(Frame::data(Bytes::from(vec![b'a'; 40_000]))))
            .await
            .unwrap();
    }
    let frames = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    }));
    let req = hyper::Request::post(format!("http://{addr}/upload"))
        .header("host", "app.example")
        .body(StreamBody::new(frames))
        .unwrap();
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let resp = tokio::time::timeout(Duration::from_secs(5), c.request(req))
        .await
        .expect("answered before the body ended")
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(tx);
    let _ = resp.into_body().collect().await;
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        TestClient::http1(addr).get("app.example", "/next"),
    )
    .await
    .expect("the next request went on a fresh connection");
    assert_eq!(&next.body[..], b"ok");
}

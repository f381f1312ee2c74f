//! Wire-level behaviour: HTTP/2 cleartext both ways, streamed bodies, WebSocket tunnels, and the
//! edge limits (431, 400, slow clients).
mod common;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use sluice_echo::Identity;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn setup(
    protocol: &str,
    opts: sluice_proxy::ServerOptions,
) -> (sluice_proxy::Gateway, sluice_echo::Echo) {
    let pod = backends(vec![Identity::new("app", "v1", "pod")])
        .await
        .remove(0);
    let yaml = service_entry_speaking("app", &[(&pod, 1)], protocol)
        + &app_routes("    - route: [{destination: {host: app}}]");
    let gw = gateway(snapshot(&yaml, &[]), opts);
    (gw, pod)
}

/// Sends raw bytes and reads until the peer closes or `limit` passes.
async fn raw(addr: std::net::SocketAddr, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_downstream_to_http1_upstream() {
    let (gw, _pod) = setup("HTTP", test_options()).await;
    let stream = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    let mut send = http2_sender(stream).await;
    for i in 0..3 {
        let req = hyper::Request::get(format!("http://shop.example/h2/{i}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["proto"], "HTTP/1.1");
        assert_eq!(seen["host"], "shop.example", ":authority becomes Host");
        assert_eq!(seen["path"], format!("/h2/{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_upstream_when_the_port_protocol_says_so() {
    let (gw, pod) = setup("HTTP2", test_options()).await;
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for _ in 0..5 {
        let r = client.get("shop.example", "/up").await;
        assert_eq!(r.json()["proto"], "HTTP/2.0");
        assert_eq!(r.json()["host"], "shop.example");
    }
    assert_eq!(pod.hits(), 5);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_streams_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let (gw, _pod) = setup("HTTP", test_options()).await;
    let before = rss_kib();
    let mut s = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    let head =
        format!("POST /upload HTTP/1.1\r\nhost: shop.example\r\ncontent-length: {SIZE}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 256 * 1024];
    let mut sent = 0;
    while sent < SIZE {
        s.write_all(&chunk).await.unwrap();
        sent += chunk.len() as u64;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("\"body_bytes\"") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&format!("\"body_bytes\":{SIZE}")), "{text}");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew {grown} KiB for a 1 GiB upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_tunnelled() {
    let (gw, _pod) = setup("HTTP", test_options()).await;
    let mut s = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: shop.example\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
          sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in [
        &b"hello"[..],
        &[0u8, 1, 2, 255][..],
        &vec![7u8; 100_000][..],
    ] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_4xx() {
    let (gw, pod) = setup("HTTP", test_options()).await;
    let addr = gw.local_addr(80).unwrap();
    let limit = Duration::from_secs(5);

    let big = format!(
        "GET / HTTP/1.1\r\nhost: a\r\nx-big: {}\r\n\r\n",
        "v".repeat(70 * 1024)
    );
    assert!(raw(addr, big.as_bytes(), limit)
        .await
        .starts_with("HTTP/1.1 431"));

    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nhost: a\r\n{many}\r\n");
    assert!(raw(addr, many.as_bytes(), limit)
        .await
        .starts_with("HTTP/1.1 431"));

    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\nhost: a\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n",
    ] {
        let r = raw(addr, garbage, limit).await;
        assert!(
            r.starts_with("HTTP/1.1 400"),
            "{:?} → {r:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    let no_host = raw(addr, b"GET / HTTP/1.1\r\n\r\n", limit).await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    assert_eq!(pod.hits(), 0, "nothing malformed reached the backend");

    // Just under the limits still passes.
    let fits = format!(
        "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\nx-big: {}\r\n\r\n",
        "v".repeat(50 * 1024)
    );
    assert!(raw(addr, fits.as_bytes(), limit)
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_headers_client_is_cut_off_without_delaying_others() {
    let opts = sluice_proxy::ServerOptions {
        request_headers_timeout: Duration::from_millis(500),
        ..test_options()
    };
    let (gw, _pod) = setup("HTTP", opts).await;
    let addr = gw.local_addr(80).unwrap();
    let started = Instant::now();
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n").await.unwrap();
        // Dribble a header byte now and then, never finishing.
        let mut buf = [0u8; 512];
        for _ in 0..40 {
            if s.write_all(b"x").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => break,
                Err(_) => {}
            }
        }
        started.elapsed()
    });
    let client = TestClient::http1(addr);
    for _ in 0..10 {
        let t = Instant::now();
        assert_eq!(client.get("a", "/").await.status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }
    let cut_after = slow.await.unwrap();
    assert!(
        cut_after >= Duration::from_millis(450) && cut_after < Duration::from_millis(3000),
        "slow client cut after {cut_after:?}"
    );
}

/// A gRPC-shaped backend: HTTP/2 only, answers with a data frame and `grpc-status` trailers,
/// after `delay`.
async fn grpc_backend(delay: Duration) -> std::net::SocketAddr {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let _ = req.into_body().collect().await;
                        tokio::time::sleep(delay).await;
                        let mut trailers = hyper::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        trailers.insert("x-served-path", path.parse().unwrap());
                        let frames = futures_util::stream::iter(vec![
                            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(
                                b"\0\0\0\0\x02hi",
                            ))),
                            Ok(Frame::trailers(trailers)),
                        ]);
                        let mut resp = hyper::Response::new(StreamBody::new(frames));
                        resp.headers_mut()
                            .insert("content-type", "application/grpc".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    addr
}

async fn grpc_call(
    gw: &sluice_proxy::Gateway,
    path: &str,
) -> (u16, hyper::HeaderMap, Option<hyper::HeaderMap>) {
    let stream = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    let mut send = http2_sender(stream).await;
    let req = hyper::Request::post(format!("http://grpc.example{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(Bytes::from_static(b"\0\0\0\0\0")))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.unwrap();
    (status, headers, collected.trailers().cloned())
}

/// A ServiceEntry for `<name>.default.svc.cluster.local:9000` (GRPC) at `backend`.
fn grpc_service(name: &str, backend: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  hosts: [{name}.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 9000, name: grpc, protocol: GRPC}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{grpc: {}}}}}]\n---\n",
        backend.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_end_to_end_keeps_trailers_and_maps_timeouts() {
    let fast = grpc_backend(Duration::ZERO).await;
    let slow = grpc_backend(Duration::from_secs(3)).await;
    let yaml = format!(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 80, name: grpc, protocol: GRPC}}, hosts: ["*"]}}]
---
{}{}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: grpc, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
    - match: [{{uri: {{prefix: /slow.Service/}}}}]
      timeout: 200ms
      route: [{{destination: {{host: slow}}}}]
    - match: [{{uri: {{prefix: /fast.Service/}}}}]
      route: [{{destination: {{host: fast}}}}]
"#,
        grpc_service("fast", fast),
        grpc_service("slow", slow)
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let (status, headers, trailers) = grpc_call(&gw, "/fast.Service/Hello").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/grpc");
    let trailers = trailers.expect("trailers reach the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-served-path"], "/fast.Service/Hello");

    // A route timeout is DEADLINE_EXCEEDED for gRPC; no route is UNIMPLEMENTED.
    let (status, headers, _) = grpc_call(&gw, "/slow.Service/Hello").await;
    assert_eq!(
        (status, headers["grpc-status"].to_str().unwrap()),
        (200, "4")
    );
    let (status, headers, _) = grpc_call(&gw, "/nothing/Here").await;
    assert_eq!(
        (status, headers["grpc-status"].to_str().unwrap()),
        (200, "12")
    );
}

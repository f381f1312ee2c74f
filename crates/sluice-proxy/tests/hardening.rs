//! What an attacker on the internet tries first (issue 12): idle connections, encoded dot
//! segments, smuggled Hosts, stalled bodies, odd request targets. Raw sockets on loopback, so the
//! bytes on the wire are exactly the attack's.
mod common;
use bytes::Bytes;
use common::*;
use sluice_echo::{Echo, Identity};
use sluice_proxy::{PathNormalization, ServerOptions};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `/admin` is blocked with 403 at the gateway; everything else goes to the pod.
const BLOCK_ADMIN: &str = "    - match: [{uri: {prefix: /admin}}]
      directResponse: {status: 403}
    - route: [{destination: {host: app}}]";

async fn setup(opts: ServerOptions) -> (sluice_proxy::Gateway, Echo) {
    let pod = backends(vec![Identity::new("app", "v1", "pod")])
        .await
        .remove(0);
    let yaml = service_entry("app", &[(&pod, 1)]) + &app_routes(BLOCK_ADMIN);
    (gateway(snapshot(&yaml, &[]), opts), pod)
}

/// Sends raw bytes and reads one response (head and `content-length` body), until the peer
/// closes, or until `limit` passes.
async fn raw(addr: SocketAddr, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 8192];
        while !complete(&out) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A whole response with a `content-length` (or none, meaning no body) is in `out`.
fn complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// The status line's code of a raw answer, or 0 when there was none.
fn status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Whether the peer closed `s` within `limit` (EOF or reset), reading whatever came first.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(limit, s.read_to_end(&mut sink))
        .await
        .is_ok()
}

fn opts() -> ServerOptions {
    test_options()
}

// 1. Connections that never send a byte.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_headers_timeout() {
    let (gw, _pod) = setup(ServerOptions {
        max_connections: 5,
        request_headers_timeout: Duration::from_millis(500),
        ..opts()
    })
    .await;
    let addr = gw.local_addr(80).unwrap();
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "a connection that sent nothing is still open"
        );
    }
    let r = TestClient::http1(addr).get("app.example", "/ok").await;
    assert_eq!(r.status, 200, "the slots came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_the_http2_preface_is_closed_too() {
    let (gw, _pod) = setup(ServerOptions {
        request_headers_timeout: Duration::from_millis(300),
        ..opts()
    })
    .await;
    let mut s = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_shed_with_503_not_queued() {
    let (gw, _pod) = setup(ServerOptions {
        max_connections: 3,
        ..opts()
    })
    .await;
    let addr = gw.local_addr(80).unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let answer = raw(
        addr,
        b"GET /ok HTTP/1.1\r\nhost: app.example\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    drop(held);
    // Slots come back as the held connections close.
    let client = TestClient::http1(addr);
    let mut ok = false;
    for _ in 0..50 {
        if client.get("app.example", "/ok").await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ok,
        "the gateway serves again once the held connections are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let (gw, _pod) = setup(ServerOptions {
        max_connections_per_ip: Some(2),
        ..opts()
    })
    .await;
    let addr = gw.local_addr(80).unwrap();
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    let answer = raw(
        addr,
        b"GET /ok HTTP/1.1\r\nhost: app.example\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&answer), 503, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_watermark_new_requests_get_503() {
    let (gw, pod) = setup(ServerOptions {
        // Any process is above one byte: the gateway is overloaded from the first sample.
        max_rss_bytes: Some(1),
        ..opts()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = raw(
        gw.local_addr(80).unwrap(),
        b"GET /ok HTTP/1.1\r\nhost: app.example\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(answer.contains("retry-after"), "{answer}");
    assert_eq!(pod.hits(), 0);
}

// 2. Percent-encoded dot segments.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_dot_segments_cannot_bypass_a_route() {
    let (gw, pod) = setup(opts()).await;
    let addr = gw.local_addr(80).unwrap();
    for client in [TestClient::http1(addr), TestClient::http2(addr)] {
        for path in [
            "/x/../admin",
            "/x/%2e%2e/admin",
            "/.%2E/admin",
            "/%2e/admin",
        ] {
            let r = client.get("app.example", path).await;
            assert_eq!(r.status, 403, "{path}");
        }
    }
    assert_eq!(pod.hits(), 0);
}

/// One row of the path security table: the path sent, and either `Blocked` (the `/admin` route
/// saw it) or the path the backend got.
enum Seen {
    Blocked,
    Upstream(&'static str),
    BadRequest,
}

/// Envoy's and Istio's path-normalisation advisories as cases (Istio's default, BASE).
const BASE_TABLE: &[(&str, Seen)] = &[
    ("/x/../admin", Seen::Blocked),
    ("/x/%2e%2e/admin", Seen::Blocked),
    ("/x/%2E%2e/admin", Seen::Blocked),
    ("/x/.%2E/admin", Seen::Blocked),
    ("/x/%2e./admin", Seen::Blocked),
    ("/%2e/admin", Seen::Blocked),
    ("/%61dmin", Seen::Blocked),
    ("/x/./../admin?q=%2e%2e", Seen::Blocked),
    ("/public/%2e%2e/%2e%2e/admin", Seen::Blocked),
    // Slashes are not merged in BASE: a backend that merges them reads /admin (Istio's advisory
    // recommends MERGE_SLASHES; see the next table).
    ("//admin", Seen::Upstream("//admin")),
    ("/x//../admin", Seen::Upstream("/x/admin")),
    // Encoded slashes and backslashes stay encoded: not separators for the route or the backend.
    ("/x/..%2Fadmin", Seen::Upstream("/x/..%2Fadmin")),
    ("/x/..%2fadmin", Seen::Upstream("/x/..%2fadmin")),
    ("/x/..%5Cadmin", Seen::Upstream("/x/..%5Cadmin")),
    // Path parameters are not segments to Envoy; a servlet backend would read `..;` as `..`.
    ("/x/..;/admin", Seen::Upstream("/x/..;/admin")),
    ("/admin;x=1", Seen::Blocked),
    // Route matching is case-sensitive, as Istio's.
    ("/ADMIN", Seen::Upstream("/ADMIN")),
    // Overlong UTF-8 and double encoding are not dots: forwarded as sent.
    (
        "/x/%c0%ae%c0%ae/admin",
        Seen::Upstream("/x/%c0%ae%c0%ae/admin"),
    ),
    ("/x/%252e%252e/admin", Seen::Upstream("/x/%252e%252e/admin")),
    ("/%7Eu/%41", Seen::Upstream("/~u/A")),
    ("/x/%zz", Seen::BadRequest),
    ("/x/%2", Seen::BadRequest),
];

/// The same attacks when slashes are merged (and, in the last mode, decoded).
const MERGE_TABLE: &[(&str, Seen, Seen)] = &[
    // (path, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES)
    ("//admin", Seen::Blocked, Seen::Blocked),
    (
        "/x//../admin",
        Seen::Upstream("/x/admin"),
        Seen::Upstream("/x/admin"),
    ),
    (
        "/x/..%2Fadmin",
        Seen::Upstream("/x/..%2Fadmin"),
        Seen::Blocked,
    ),
    (
        "/x/..%5Cadmin",
        Seen::Upstream("/x/..%5Cadmin"),
        Seen::Blocked,
    ),
    (
        "/%2F%2Fadmin",
        Seen::Upstream("/%2F%2Fadmin"),
        Seen::Blocked,
    ),
];

async fn check_row(client: &TestClient, path: &str, want: &Seen, mode: &str) {
    let r = client.get("app.example", path).await;
    let label = format!("{mode} {path}");
    match want {
        Seen::Blocked => assert_eq!(r.status, 403, "{label}"),
        Seen::BadRequest => assert_eq!(r.status, 400, "{label}"),
        Seen::Upstream(p) => {
            assert_eq!(r.status, 200, "{label}");
            let seen = r.json()["path"].as_str().unwrap().to_string();
            assert_eq!(seen, *p, "{label}: the backend got another path");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_security_table_base() {
    let (gw, _pod) = setup(opts()).await;
    let addr = gw.local_addr(80).unwrap();
    for (name, client) in [
        ("h1", TestClient::http1(addr)),
        ("h2", TestClient::http2(addr)),
    ] {
        for (path, want) in BASE_TABLE {
            check_row(&client, path, want, name).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_security_table_merge_slashes_modes() {
    for (i, mode) in [
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ]
    .into_iter()
    .enumerate()
    {
        let (gw, _pod) = setup(ServerOptions {
            path_normalization: mode,
            ..opts()
        })
        .await;
        let addr = gw.local_addr(80).unwrap();
        for client in [TestClient::http1(addr), TestClient::http2(addr)] {
            for (path, merge, decode) in MERGE_TABLE {
                let want = if i == 0 { merge } else { decode };
                check_row(&client, path, want, &format!("{mode:?}")).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_backslash_is_a_slash() {
    let (gw, pod) = setup(opts()).await;
    let answer = raw(
        gw.local_addr(80).unwrap(),
        b"GET /x/..\\admin HTTP/1.1\r\nhost: app.example\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    // hyper may refuse the byte itself (400); either way the backend never sees it.
    assert!(matches!(status(&answer), 403 | 400), "{answer}");
    assert_eq!(pod.hits(), 0);
}

// 3. Hosts.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_or_invalid_hosts_get_400() {
    let (gw, pod) = setup(opts()).await;
    let addr = gw.local_addr(80).unwrap();
    let requests: &[&[u8]] = &[
        b"GET /ok HTTP/1.1\r\nhost: app.example\r\nhost: admin.example\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: a b\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: a/admin@x\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: x, y\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: user@app.example\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: app.example:80x\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nhost: \r\n\r\n",
    ];
    for req in requests {
        let answer = raw(addr, req, Duration::from_secs(5)).await;
        assert_eq!(
            status(&answer),
            400,
            "{}: {answer}",
            String::from_utf8_lossy(req)
        );
    }
    assert_eq!(pod.hits(), 0);
    for ok in ["app.example", "app.example:8080", "[::1]:80", "10.0.0.1"] {
        let r = TestClient::http1(addr).get(ok, "/ok").await;
        assert_eq!(r.status, 200, "{ok}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_cannot_slip_past_the_tls_server_check() {
    use common::pki::*;
    let ca = Ca::new("test root");
    let shop = ca.leaf(&["shop.example"]);
    let pod = backends(vec![Identity::new("app", "v1", "pod")])
        .await
        .remove(0);
    let yaml = service_entry("app", &[(&pod, 1)])
        + &tls_secret("shop-cert", &shop.cert_pem, &shop.key_pem, None)
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [shop.example]
      tls: {mode: SIMPLE, credentialName: shop-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), opts());
    let config = client_config(&ca, None, false, false);
    let mut tls = tls_connect(gw.local_addr(443).unwrap(), "shop.example", config)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: shop.example\r\nhost: admin.internal\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status(&answer), 400, "{answer}");
    assert_eq!(pod.hits(), 0);
}

// 4. Request bodies that stop.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408() {
    let (gw, _pod) = setup(ServerOptions {
        request_body_timeout: Duration::from_millis(300),
        ..opts()
    })
    .await;
    let addr = gw.local_addr(80).unwrap();
    let answer = raw(
        addr,
        b"POST /up HTTP/1.1\r\nhost: app.example\r\ncontent-length: 10000000\r\n\r\nabc",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&answer), 408, "{answer}");
    // A trailer line ending in a bare LF: hyper waits for a CR that never comes; the idle
    // timeout ends it.
    let answer = raw(
        addr,
        b"POST /up HTTP/1.1\r\nhost: app.example\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx: y\n\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(status(&answer), 400 | 408), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_that_stops_is_cut() {
    let (gw, _pod) = setup(ServerOptions {
        request_body_timeout: Duration::from_millis(300),
        replay_buffer_bytes: 1024,
        ..opts()
    })
    .await;
    let mut s = TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    s.write_all(b"POST /up HTTP/1.1\r\nhost: app.example\r\ncontent-length: 10000000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'x'; 8192]).await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "a stalled streaming upload is still held"
    );
}

// 6. Odd requests.

/// A gateway whose only route goes to a backend at `addr`.
fn gateway_to(addr: SocketAddr) -> sluice_proxy::Gateway {
    gateway_to_backend(addr, "", opts())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_asterisk_and_authority_form_are_not_forwarded() {
    let (gw, pod) = setup(opts()).await;
    let addr = gw.local_addr(80).unwrap();
    let cases: &[(&[u8], u16)] = &[
        (
            b"CONNECT app.example:443 HTTP/1.1\r\nhost: app.example:443\r\n\r\n",
            404,
        ),
        (b"GET admin HTTP/1.1\r\nhost: app.example\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\nhost: app.example\r\n\r\n", 404),
    ];
    for (req, want) in cases {
        let answer = raw(addr, req, Duration::from_secs(2)).await;
        assert_eq!(
            status(&answer),
            *want,
            "{}: {answer}",
            String::from_utf8_lossy(req)
        );
    }
    assert_eq!(pod.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_nobody_asked_for_is_a_502() {
    let backend = raw::raw_backend(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: evil\r\nconnection: upgrade\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    let gw = gateway_to(backend);
    let answer = raw(
        gw.local_addr(80).unwrap(),
        b"GET / HTTP/1.1\r\nhost: app.example\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(status(&answer), 502, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_the_limit_get_431_however_they_arrive() {
    let (gw, pod) = setup(opts()).await;
    let addr = gw.local_addr(80).unwrap();
    for size in [62_000usize, 65_000] {
        let mut req = b"GET /ok HTTP/1.1\r\nhost: app.example\r\nx-big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', size));
        req.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        let answer = raw(addr, &req, Duration::from_secs(5)).await;
        assert_eq!(status(&answer), 431, "{size} bytes: {answer}");
    }
    assert_eq!(pod.hits(), 0);
    let r = TestClient::http1(addr)
        .send(
            "GET",
            "app.example",
            "/ok",
            &[("x-big", &"a".repeat(50_000))],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200, "under the limit is fine");
}

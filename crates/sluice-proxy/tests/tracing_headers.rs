//! With tracing off (no `--otlp-endpoint`, the default), trace context crosses the gateway
//! unchanged (W3C `traceparent`/`tracestate`, B3 multi and single header), on HTTP/1.1 and
//! HTTP/2, next to the `x-request-id` the gateway keeps or makes. With tracing on: `otlp.rs`.
mod common;
use common::*;

const TRACE: [(&str, &str); 8] = [
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
    ("x-b3-sampled", "1"),
    (
        "b3",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    ),
    ("x-request-id", "f3a1c2d4-0000-4000-8000-000000000001"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_headers_reach_the_backend_unchanged() {
    let pods = demo_pods().await;
    let gw = gateway(snapshot(&seed_yaml(&pods), &[]), test_options());
    let addr = gw.local_addr(80).unwrap();
    for client in [TestClient::http1(addr), TestClient::http2(addr)] {
        let reply = client
            .send("GET", "shop.example", "/tasks", &TRACE, bytes::Bytes::new())
            .await;
        assert_eq!(reply.status, 200);
        let seen = &reply.json()["headers"];
        for (name, value) in TRACE {
            assert_eq!(seen[name], value, "{name}");
        }
    }
    // Without one, the backend gets a generated request id (a UUID).
    let reply = TestClient::http1(addr).get("shop.example", "/tasks").await;
    let id = reply.json()["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!((id.len(), id.as_bytes()[14]), (36, b'4'), "{id}");
}

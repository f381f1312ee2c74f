//! Spans over real sockets: the gateway with an OTLP exporter (`sluice-trace`) sends to a
//! loopback OTLP/HTTP receiver that decodes each export request with the protocol's own types,
//! and an echo backend says which trace context it got.
mod common;
#[path = "common/otlp.rs"]
mod otlp;
use bytes::Bytes;
use common::*;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use otlp::{attr, hex, Collector};
use sluice_echo::{Echo, Identity};
use sluice_proxy::trace::Tracer;
use sluice_proxy::{Gateway, ServerOptions};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// GET `path` of `shop.example` with the client's `traceparent`.
async fn with_traceparent(client: &TestClient, path: &str, traceparent: &str) -> Reply {
    let headers = [("traceparent", traceparent)];
    client
        .send("GET", "shop.example", path, &headers, Bytes::new())
        .await
}

/// `traceparent`'s trace id, span id and flags.
fn traceparent(v: &str) -> (String, String, String) {
    let parts: Vec<&str> = v.split('-').collect();
    assert_eq!((parts.len(), parts[0]), (4, "00"), "{v}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

struct Setup {
    gw: Gateway,
    collector: Collector,
    shop: Echo,
    exporter: sluice_trace::Exporter,
    _down: Echo,
}

/// A gateway exporting to a loopback receiver: `/shop` goes to an echo pod, `/down` to a pod
/// that answers 503, anything else finds no route.
async fn setup(sampling: f64) -> Setup {
    let (collector, addr) = Collector::start().await;
    let pods = backends(vec![
        Identity::new("shop", "v1", "shop-v1-a"),
        Identity::new("down", "v1", "down-v1-a"),
    ])
    .await;
    pods[1].fail_next(u64::MAX, 503);
    let routes = "    - name: shop\n      match: [{uri: {prefix: /shop}}]\n      route: [{destination: {host: shop.default.svc.cluster.local, port: {number: 8000}}}]\n    - name: down\n      match: [{uri: {prefix: /down}}]\n      route: [{destination: {host: down.default.svc.cluster.local, port: {number: 8000}}}]\n      retries: {attempts: 0}\n";
    let yaml = format!(
        "{}{}{}",
        service_entry("shop", &[(&pods[0], 1)]),
        service_entry("down", &[(&pods[1], 1)]),
        app_routes(routes)
    );
    let workload = sluice_proxy::metrics::Workload::default();
    let (tracer, exporter) = sluice_trace::start(sluice_trace::Options {
        sampling,
        attributes: sluice_proxy::trace::istio_attributes(&workload),
        flush_interval: Duration::from_millis(50),
        service_name: "edge-gateway".into(),
        ..sluice_trace::Options::new(format!("http://{addr}"))
    })
    .unwrap();
    let opts = ServerOptions {
        tracer: Some(tracer),
        workload,
        ..test_options()
    };
    let gw = gateway(snapshot(&yaml, &[]), opts);
    let mut pods = pods.into_iter();
    Setup {
        gw,
        collector,
        shop: pods.next().unwrap(),
        _down: pods.next().unwrap(),
        exporter,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trace_continues_through_the_gateway() {
    let s = setup(1.0).await;
    let addr = s.gw.local_addr(80).unwrap();
    let client_tp = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    let state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    // HTTP/2's :authority (the test client's URI) wins over Host, for routing as for the span.
    for (client, version, server, trace) in [
        (
            TestClient::http1(addr),
            "1.1",
            "shop.example",
            TRACE.to_string(),
        ),
        // Another trace, so each protocol has its own span.
        (
            TestClient::http2(addr),
            "2",
            "127.0.0.1",
            TRACE.replace("4bf9", "5bf9"),
        ),
    ] {
        let tp = client_tp.replace(TRACE, &trace);
        let headers = [
            ("traceparent", tp.as_str()),
            ("tracestate", state),
            ("user-agent", "curl/8.5.0"),
        ];
        let reply = client
            .send(
                "GET",
                "shop.example",
                "/shop/cart?x=1",
                &headers,
                Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, 200);
        let seen = &reply.json()["headers"];
        // The backend's parent is the gateway's span, in the client's trace; tracestate kept.
        let (seen_trace, gateway_span, flags) = traceparent(seen["traceparent"].as_str().unwrap());
        assert_eq!(
            (seen_trace.as_str(), flags.as_str()),
            (trace.as_str(), "01")
        );
        assert_ne!(gateway_span, CLIENT_SPAN);
        assert_eq!(seen["tracestate"], state);

        let (resource, span) = s.collector.span_of(&trace);
        assert_eq!(hex(&span.span_id), gateway_span);
        assert_eq!(hex(&span.parent_span_id), CLIENT_SPAN);
        assert_eq!(span.trace_state, state);
        assert_eq!(span.kind, SpanKind::Server as i32);
        // Istio's route decorator: the route's only cluster, then its prefix.
        assert_eq!(span.name, "shop.default.svc.cluster.local:8000/shop*");
        assert_eq!(
            span.status.unwrap_or_default().code,
            StatusCode::Unset as i32
        );
        assert!(span.end_time_unix_nano > span.start_time_unix_nano);
        let a = &span.attributes;
        let request_id = seen["x-request-id"].as_str().unwrap();
        let upstream = s.shop.addr.to_string();
        for (key, value) in [
            ("http.request.method", "GET"),
            ("url.path", "/shop/cart"),
            ("url.scheme", "http"),
            ("server.address", server),
            ("network.protocol.version", version),
            ("client.address", "127.0.0.1"),
            ("user_agent.original", "curl/8.5.0"),
            ("http.response.status_code", "200"),
            ("response_flags", "-"),
            (
                "upstream_cluster",
                "outbound|8000||shop.default.svc.cluster.local",
            ),
            ("upstream_address", upstream.as_str()),
            ("route_name", "shop"),
            ("guid:x-request-id", request_id),
            ("component", "proxy"),
            ("istio.canonical_service", "sluice"),
            ("istio.canonical_revision", "latest"),
            ("istio.namespace", "istio-system"),
            ("istio.mesh_id", "cluster.local"),
            ("istio.cluster_id", "Kubernetes"),
        ] {
            assert_eq!(attr(a, key).as_deref(), Some(value), "{key}");
        }
        assert_eq!(
            attr(&resource, "service.name").as_deref(),
            Some("edge-gateway")
        );
    }
    let requests = s.collector.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for (path, content_type) in requests {
        assert_eq!(
            (path.as_str(), content_type.as_str()),
            ("/v1/traces", "application/x-protobuf")
        );
    }
    let stats = s.gw.runtime_metrics();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(stats));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("sluice_trace_spans_exported_total 2"),
        "{text}"
    );
    assert!(
        text.contains("sluice_trace_spans_dropped_total 0"),
        "{text}"
    );
    s.exporter.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_context_a_new_trace_starts_and_b3_continues_without_traceparent() {
    let s = setup(1.0).await;
    let client = TestClient::http1(s.gw.local_addr(80).unwrap());

    let reply = client.get("shop.example", "/shop").await;
    let seen = &reply.json()["headers"];
    let (trace, span_id, flags) = traceparent(seen["traceparent"].as_str().unwrap());
    assert_eq!(flags, "01");
    assert_ne!(trace, "0".repeat(32));
    assert!(seen.get("tracestate").is_none());
    let (_, span) = s.collector.span_of(&trace);
    assert_eq!(hex(&span.span_id), span_id);
    assert!(span.parent_span_id.is_empty(), "a root span");

    // B3 without traceparent: the trace continues, and both B3 and W3C tell the backend.
    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let b3_span = "e457b5a2e4d86bd1";
    let b3 = [
        ("x-b3-traceid", b3_trace),
        ("x-b3-spanid", b3_span),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("x-b3-sampled", "1"),
    ];
    let reply = client
        .send("GET", "shop.example", "/shop", &b3, Bytes::new())
        .await;
    let seen = &reply.json()["headers"];
    let (tp_trace, gateway_span, _) = traceparent(seen["traceparent"].as_str().unwrap());
    assert_eq!(tp_trace, b3_trace);
    assert_eq!(seen["x-b3-traceid"], b3_trace);
    assert_eq!(seen["x-b3-spanid"], gateway_span.as_str());
    assert_eq!(seen["x-b3-parentspanid"], b3_span);
    assert_eq!(seen["x-b3-sampled"], "1");
    let (_, span) = s.collector.span_of(b3_trace);
    assert_eq!(hex(&span.parent_span_id), b3_span);
    assert_eq!(hex(&span.span_id), gateway_span);

    // No route: Envoy's default name for a gateway's (outbound) listener; 404 is no error.
    let reply = client.get("shop.example:8080", "/nowhere").await;
    assert_eq!(reply.status, 404);
    wait_for_spans(&s.collector, 3);
    let spans = s.collector.spans.lock().unwrap().clone();
    let (_, span) = spans
        .iter()
        .find(|(_, sp)| attr(&sp.attributes, "url.path").as_deref() == Some("/nowhere"))
        .expect("the 404's span");
    assert_eq!(span.name, "egress shop.example:8080");
    assert_eq!(
        attr(&span.attributes, "response_flags").as_deref(),
        Some("NR")
    );
    assert_eq!(
        attr(&span.attributes, "server.port").as_deref(),
        Some("8080")
    );
    assert_eq!(attr(&span.attributes, "upstream_cluster"), None);
    assert_eq!(
        span.status.clone().unwrap_or_default().code,
        StatusCode::Unset as i32
    );
}

/// Waits until `n` spans have arrived (bounded).
fn wait_for_spans(c: &Collector, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.traces().len() < n {
        assert!(Instant::now() < deadline, "{n} spans expected");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_span_is_an_error() {
    let s = setup(1.0).await;
    let client = TestClient::http1(s.gw.local_addr(80).unwrap());
    let tp = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    let reply = with_traceparent(&client, "/down", &tp).await;
    assert_eq!(reply.status, 503);
    let (_, span) = s.collector.span_of(TRACE);
    assert_eq!(span.status.unwrap().code, StatusCode::Error as i32);
    assert_eq!(
        attr(&span.attributes, "http.response.status_code").as_deref(),
        Some("503")
    );
    assert_eq!(span.name, "down.default.svc.cluster.local:8000/down*");
    assert_eq!(
        attr(&span.attributes, "route_name").as_deref(),
        Some("down")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampling_ratio_applies_only_without_a_client_decision() {
    // Ratio 0: only requests whose client sampled them are.
    let s = setup(0.0).await;
    let client = TestClient::http1(s.gw.local_addr(80).unwrap());

    let reply = client.get("shop.example", "/shop").await;
    let (root_trace, _, flags) =
        traceparent(reply.json()["headers"]["traceparent"].as_str().unwrap());
    assert_eq!(flags, "00");

    let unsampled_trace = TRACE.replace("4bf9", "6bf9");
    let unsampled = format!("00-{unsampled_trace}-{CLIENT_SPAN}-00");
    let reply = with_traceparent(&client, "/shop", &unsampled).await;
    let (trace, span, flags) =
        traceparent(reply.json()["headers"]["traceparent"].as_str().unwrap());
    assert_eq!(
        (trace.as_str(), flags.as_str()),
        (unsampled_trace.as_str(), "00")
    );
    assert_ne!(span, CLIENT_SPAN);

    let sampled = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    with_traceparent(&client, "/shop", &sampled).await;
    // Spans leave in order: once the sampled one is in, the others would have been too.
    s.collector.span_of(TRACE);
    assert_eq!(s.collector.traces(), [TRACE]);
    assert_ne!(root_trace, TRACE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_spans_and_counts_them() {
    let pods = backends(vec![Identity::new("shop", "v1", "shop-v1-a")]).await;
    let yaml = format!(
        "{}{}",
        service_entry("shop", &[(&pods[0], 1)]),
        app_routes("    - route: [{destination: {host: shop.default.svc.cluster.local, port: {number: 8000}}}]\n")
    );
    // Nobody reads the queue: one span waits, the rest are dropped.
    let (tracer, spans) = Tracer::new(1.0, 1);
    let opts = ServerOptions {
        tracer: Some(tracer.clone()),
        ..test_options()
    };
    let gw = gateway(snapshot(&yaml, &[]), opts);
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for _ in 0..3 {
        assert_eq!(client.get("shop.example", "/").await.status, 200);
    }
    // The record is written when the response body ends, just after the client has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracer.stats().dropped.load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "2 spans dropped expected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tracer.stats().dropped.load(Ordering::Relaxed), 2);
    drop(spans);
}

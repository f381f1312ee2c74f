//! Route policies against backends that misbehave on purpose: retries counted at the backend,
//! timeouts seen from the client, rewrites and header edits seen by the backend, mirrors counted
//! at the shadow, faults within statistical bounds, CORS headers exact.
mod common;
use common::*;
use sluice_echo::{Echo, Identity};
use std::time::{Duration, Instant};

async fn pods(names: &[&str]) -> Vec<Echo> {
    backends(
        names
            .iter()
            .map(|n| Identity::new("app", "v1", n))
            .collect(),
    )
    .await
}

/// A gateway whose VirtualService `http` list is `http`, with service `app` on `app_pods` and
/// service `shadow` on `shadow_pods`.
fn serve(app_pods: &[&Echo], shadow_pods: &[&Echo], http: &str) -> sluice_proxy::Gateway {
    fn weights<'a>(p: &[&'a Echo]) -> Vec<(&'a Echo, u32)> {
        p.iter().map(|e| (*e, 1)).collect()
    }
    let mut yaml = service_entry("app", &weights(app_pods));
    if !shadow_pods.is_empty() {
        yaml += &service_entry("shadow", &weights(shadow_pods));
    }
    yaml += &app_routes(http);
    gateway(snapshot(&yaml, &[]), test_options())
}

fn client(gw: &sluice_proxy::Gateway) -> TestClient {
    TestClient::http1(gw.local_addr(80).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_gives_504_and_is_off_by_default() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {prefix: /limited}}]
      timeout: 300ms
      route: [{destination: {host: app}}]
    - route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    let t = Instant::now();
    let r = c.get("a", "/limited?sleep_ms=3000").await;
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(&r.body[..], b"upstream request timeout");
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // No timeout unless set: a slow answer still arrives.
    assert_eq!(c.get("a", "/free?sleep_ms=1200").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_as_configured_and_istios_default() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {prefix: /retry5xx}}]
      retries: {attempts: 3, retryOn: 5xx}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /codes}}]
      retries: {attempts: 2, retryOn: "429"}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /none}}]
      retries: {attempts: 0}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /reset}}]
      retries: {attempts: 1, retryOn: reset}
      route: [{destination: {host: app}}]
    - route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    let hits = |before: u64| p[0].hits() - before;

    // Two failures then success: three tries seen at the backend.
    p[0].fail_next(2, 503);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/retry5xx").await.status, 200);
    assert_eq!(hits(h), 3);

    // More failures than attempts: the last answer goes back.
    p[0].fail_next(10, 502);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/retry5xx").await.status, 502);
    assert_eq!(hits(h), 4);

    // Numeric retryOn tokens are status codes.
    p[0].fail_next(1, 429);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/codes").await.status, 200);
    assert_eq!(hits(h), 2);
    p[0].fail_next(1, 503);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/codes").await.status, 503);
    assert_eq!(hits(h), 1);

    // Istio's default policy does not retry a 503 (since 1.24)...
    p[0].fail_next(1, 503);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/default").await.status, 503);
    assert_eq!(hits(h), 1);

    // ...and attempts: 0 disables retries.
    p[0].reset_next(1);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/none").await.status, 503);
    assert_eq!(hits(h), 1);

    // A connection reset is retried under `reset`.
    p[0].reset_next(1);
    let h = p[0].hits();
    assert_eq!(c.get("a", "/reset").await.status, 200);
    assert_eq!(hits(h), 2);

    // A POST body is replayed on the retry.
    p[0].fail_next(1, 500);
    let r = c
        .send(
            "POST",
            "a",
            "/retry5xx",
            &[],
            bytes::Bytes::from(vec![b'z'; 10_000]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_bytes"], 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_retries_connect_failures_on_another_endpoint() {
    let live = pods(&["live"]).await;
    // A port nobody listens on.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut yaml = service_entry("app", &[(&live[0], 1)]);
    yaml = yaml.replace(
        "  endpoints:\n",
        &format!("  endpoints:\n    - {{address: 127.0.0.1, ports: {{http: {dead_port}}}, labels: {{version: v1}}}}\n"),
    );
    let base = yaml.clone();
    yaml += &app_routes("    - route: [{destination: {host: app}}]");
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = client(&gw);
    for _ in 0..40 {
        assert_eq!(c.get("a", "/").await.who(), "live");
    }
    gw.shutdown().await;

    // Without retries, the dead endpoint shows: 503 with Envoy's connect-failure text.
    let yaml =
        base + &app_routes("    - {retries: {attempts: 0}, route: [{destination: {host: app}}]}");
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = client(&gw);
    let mut failed = 0;
    for _ in 0..40 {
        let r = c.get("a", "/").await;
        if r.status == 503 {
            assert!(String::from_utf8_lossy(&r.body).contains("connection failure"));
            failed += 1;
        }
    }
    assert!(failed > 0, "some requests must pick the dead endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeout_moves_on_to_another_endpoint() {
    let mut slow = Identity::new("app", "v1", "slow");
    slow.latency = Duration::from_secs(2);
    let p = backends(vec![slow, Identity::new("app", "v1", "fast")]).await;
    let gw = serve(
        &[&p[0], &p[1]],
        &[],
        r#"
    - retries: {attempts: 2, perTryTimeout: 200ms, retryOn: "reset,connect-failure"}
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    for _ in 0..6 {
        let t = Instant::now();
        assert_eq!(c.get("a", "/").await.who(), "fast");
        assert!(
            t.elapsed() < Duration::from_millis(1000),
            "{:?}",
            t.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_have_exact_locations() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {prefix: /old}}]
      redirect: {uri: /new}
    - match: [{uri: {prefix: /elsewhere}}]
      redirect: {authority: other.example, uri: "/x?y=1", redirectCode: 308}
    - match: [{uri: {prefix: /secure}}]
      redirect: {scheme: https, port: 443}
    - match: [{uri: {prefix: /port}}]
      redirect: {derivePort: FROM_REQUEST_PORT, authority: b.example}
    - route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    let loc = |r: &Reply| r.headers["location"].to_str().unwrap().to_string();
    let r = c.get("shop.example", "/old/page?q=1").await;
    assert_eq!(
        (r.status.as_u16(), loc(&r)),
        (301, "http://shop.example/new?q=1".into())
    );
    let r = c.get("shop.example", "/elsewhere?q=1").await;
    assert_eq!(
        (r.status.as_u16(), loc(&r)),
        (308, "http://other.example/x?y=1".into())
    );
    let r = c.get("shop.example:8080", "/secure/a").await;
    assert_eq!(loc(&r), "https://shop.example/secure/a");
    let r = c.get("shop.example", "/port").await;
    assert_eq!(
        loc(&r),
        "http://b.example/port",
        "port 80 is omitted for http"
    );
    assert_eq!(p[0].hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_on_the_server() {
    let p = pods(&["p"]).await;
    let yaml = service_entry("app", &[(&p[0], 1)])
        + &app_routes("    - route: [{destination: {host: app}}]").replace(
            "hosts: [\"*\"]}]",
            "hosts: [\"*\"], tls: {httpsRedirect: true}}]",
        );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let r = client(&gw).get("Shop.Example", "/a/b?c=d").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://Shop.Example/a/b?c=d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_seen_by_the_backend() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {prefix: /foo}}]
      rewrite: {uri: /bar}
      route: [{destination: {host: app}}]
    - match: [{uri: {exact: /exact}}]
      rewrite: {uri: /replaced, authority: backend.internal}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /v1}}]
      rewrite: {uriRegexRewrite: {match: "^/v1/([^/]+)/(\\d+)$", rewrite: "/api/\\1?id=\\2"}}
      route: [{destination: {host: app}}]
    - rewrite: {uri: /root}
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    let seen = |r: Reply| {
        (
            r.json()["path"].as_str().unwrap().to_string(),
            r.json()["host"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        seen(c.get("a", "/foobar?x=1").await),
        ("/barbar?x=1".into(), "a".into())
    );
    assert_eq!(seen(c.get("a", "/foo/baz").await).0, "/bar/baz");
    assert_eq!(
        seen(c.get("a", "/exact?k=v").await),
        ("/replaced?k=v".into(), "backend.internal".into())
    );
    assert_eq!(seen(c.get("a", "/v1/users/42").await).0, "/api/users?id=42");
    // No path match: Istio matches with `prefix: /`, so only the leading slash is replaced.
    assert_eq!(seen(c.get("a", "/other").await).0, "/rootother");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_edits_on_route_and_destination() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - headers:
        request:
          set: {x-env: prod, host: rewritten.example}
          add: {x-added: one}
          remove: [x-secret]
        response:
          set: {x-served-by: sluice}
          remove: [content-type]
      route:
        - destination: {host: app}
          headers:
            request: {set: {x-dest: "yes"}}
            response: {add: {x-dest-resp: "1"}}"#,
    );
    let c = client(&gw);
    let r = c
        .send(
            "GET",
            "a",
            "/",
            &[("x-secret", "s"), ("x-env", "dev"), ("x-added", "zero")],
            Default::default(),
        )
        .await;
    let seen = r.json();
    let h = &seen["headers"];
    assert_eq!(h["x-env"], "prod");
    assert!(h.get("x-secret").is_none());
    assert_eq!(h["x-dest"], "yes");
    assert_eq!(
        seen["host"], "rewritten.example",
        "setting host rewrites the authority"
    );
    assert_eq!(r.headers["x-served-by"], "sluice");
    assert_eq!(r.headers["x-dest-resp"], "1");
    assert!(r.headers.get("content-type").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_copy_traffic_without_touching_the_main_response() {
    let p = pods(&["main"]).await;
    let mut slow_shadow = Identity::new("shadow", "v1", "shadow");
    slow_shadow.latency = Duration::from_millis(300);
    let s = backends(vec![slow_shadow, Identity::new("shadow", "v1", "half")]).await;
    let gw = serve(
        &[&p[0]],
        &[&s[0]],
        r#"
    - match: [{uri: {prefix: /all}}]
      mirror: {host: shadow}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /none}}]
      mirror: {host: shadow}
      mirrorPercentage: {value: 0}
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    for _ in 0..20 {
        let t = Instant::now();
        let r = c.get("a", "/all").await;
        assert_eq!(r.who(), "main");
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "the slow shadow must not slow the request"
        );
    }
    for _ in 0..20 {
        c.get("a", "/none").await;
    }
    // Mirrors are fire-and-forget: wait (bounded) for the shadow to see them all.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s[0].hits() < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s[0].hits(), 20);
    assert_eq!(p[0].hits(), 40);
    gw.shutdown().await;

    // A percentage: 50% of 400 within 6 standard deviations (±60).
    let gw = serve(
        &[&p[0]],
        &[&s[1]],
        r#"
    - mirrors: [{destination: {host: shadow}, percentage: {value: 50}}]
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    for _ in 0..400 {
        c.get("a", "/").await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = s[1].hits();
    assert!((140..=260).contains(&n), "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_host_has_no_shadow_suffix_unless_asked() {
    let p = pods(&["main"]).await;
    let s = backends(vec![Identity::new("shadow", "v1", "shadow")]).await;
    for (suffix, want) in [
        (false, "shop.example:8080"),
        (true, "shop.example-shadow:8080"),
    ] {
        let yaml = service_entry("app", &[(&p[0], 1)])
            + &service_entry("shadow", &[(&s[0], 1)])
            + &app_routes("    - {mirror: {host: shadow}, route: [{destination: {host: app}}]}");
        let opts = sluice_proxy::ServerOptions {
            mirror_host_suffix: suffix,
            ..test_options()
        };
        let gw = gateway(snapshot(&yaml, &[]), opts);
        let before = s[0].hits();
        client(&gw).get("shop.example:8080", "/").await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while s[0].hits() == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s[0].last_host().as_deref(), Some(want));
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_abort_and_delay_at_their_percentages() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {prefix: /abort}}]
      fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /half}}]
      fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /grpc}}]
      fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /delay}}]
      fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
      route: [{destination: {host: app}}]
    - match: [{uri: {prefix: /nopercent}}]
      fault: {abort: {httpStatus: 500}}
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    assert_eq!(c.get("a", "/abort").await.status, 418);
    assert_eq!(p[0].hits(), 0);
    let t = tally(&c, "a", "/half", 400).await;
    let aborted = t.get("503").copied().unwrap_or(0);
    assert!((140..=260).contains(&aborted), "{t:?}");
    let r = c
        .send(
            "POST",
            "a",
            "/grpc",
            &[("content-type", "application/grpc")],
            Default::default(),
        )
        .await;
    assert_eq!(
        (
            r.status.as_u16(),
            r.headers["grpc-status"].to_str().unwrap()
        ),
        (200, "14")
    );
    let t0 = Instant::now();
    assert_eq!(c.get("a", "/delay").await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(290));
    // Istio 1.28 injects nothing when a fault has no percentage.
    assert_eq!(c.get("a", "/nopercent").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_actual_requests() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - corsPolicy:
        allowOrigins: [{exact: "https://shop.example"}, {regex: "https://.*\\.partner\\.example"}]
        allowMethods: [GET, POST]
        allowHeaders: [x-token, content-type]
        exposeHeaders: [x-trace]
        maxAge: 24h
        allowCredentials: true
      route: [{destination: {host: app}}]"#,
    );
    let c = client(&gw);
    let pre = |origin: &'static str| {
        let c = c.clone();
        async move {
            c.send(
                "OPTIONS",
                "a",
                "/cart",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
                Default::default(),
            )
            .await
        }
    };
    let r = pre("https://shop.example").await;
    assert_eq!(r.status, 200);
    let h = |r: &Reply, k: &str| r.headers.get(k).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://shop.example")
    );
    assert_eq!(
        h(&r, "access-control-allow-methods").as_deref(),
        Some("GET,POST")
    );
    assert_eq!(
        h(&r, "access-control-allow-headers").as_deref(),
        Some("x-token,content-type")
    );
    assert_eq!(h(&r, "access-control-max-age").as_deref(), Some("86400"));
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(p[0].hits(), 0, "preflights are answered at the gateway");

    let r = pre("https://a.partner.example").await;
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://a.partner.example")
    );

    // An origin not allowed: the preflight goes on to the backend (FORWARD, the default).
    let r = pre("https://evil.example").await;
    assert!(h(&r, "access-control-allow-origin").is_none());
    assert_eq!(p[0].hits(), 1);

    let r = c
        .send(
            "GET",
            "a",
            "/cart",
            &[("origin", "https://shop.example")],
            Default::default(),
        )
        .await;
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://shop.example")
    );
    assert_eq!(
        h(&r, "access-control-expose-headers").as_deref(),
        Some("x-trace")
    );
    let r = c
        .send(
            "GET",
            "a",
            "/cart",
            &[("origin", "https://evil.example")],
            Default::default(),
        )
        .await;
    assert!(h(&r, "access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_responses() {
    let p = pods(&["p"]).await;
    let gw = serve(
        &[&p[0]],
        &[],
        r#"
    - match: [{uri: {exact: /health}}]
      directResponse: {status: 200, body: {string: "ok\n"}}
    - match: [{uri: {exact: /gone}}]
      directResponse: {status: 410, body: {bytes: "Z29uZQ=="}}
    - match: [{uri: {exact: /empty}}]
      directResponse: {status: 204}"#,
    );
    let c = client(&gw);
    let r = c.get("a", "/health").await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok\n"[..]));
    let r = c.get("a", "/gone").await;
    assert_eq!((r.status.as_u16(), &r.body[..]), (410, &b"gone"[..]));
    assert_eq!(c.get("a", "/empty").await.status, 204);
    assert_eq!(p[0].hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_applies_the_delegates_routes_under_the_roots_match() {
    let p = backends(vec![
        Identity::new("app", "v1", "cart"),
        Identity::new("app", "v1", "other"),
    ])
    .await;
    let yaml = service_entry("app", &[(&p[0], 1)])
        + &service_entry("other", &[(&p[1], 1)])
        + &app_routes(
            r#"
    - match: [{uri: {prefix: /shop}}]
      timeout: 300ms
      delegate: {name: shop-routes, namespace: team}
    - route: [{destination: {host: other}}]"#,
        )
        + r#"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-routes, namespace: team}
spec:
  http:
    - match: [{uri: {prefix: /shop/cart}}]
      route: [{destination: {host: app.default.svc.cluster.local}}]
    - match: [{uri: {prefix: /admin}}]
      route: [{destination: {host: app.default.svc.cluster.local}}]
    - match: [{uri: {prefix: /shop/fast}}]
      timeout: 5s
      route: [{destination: {host: app.default.svc.cluster.local}}]
"#;
    let snap = snapshot(&yaml, &[]);
    let gw = gateway(snap.clone(), test_options());
    let c = client(&gw);
    assert_eq!(c.get("a", "/shop/cart/1").await.who(), "cart");
    // Outside the root's /shop: the delegate's /admin route never applies.
    assert_eq!(c.get("a", "/admin").await.who(), "other");
    // Under /shop but no delegate route: routes are flattened (as Envoy sees them), so the
    // request falls through to the root's later routes.
    assert_eq!(c.get("a", "/shop/unknown").await.who(), "other");
    // The root's timeout is inherited; the delegate's own wins where set.
    assert_eq!(c.get("a", "/shop/cart?sleep_ms=2000").await.status, 504);
    assert_eq!(c.get("a", "/shop/fast?sleep_ms=500").await.status, 200);
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 80,
            host: Some("a"),
            sni: None,
            path: "/shop/cart",
            method: "GET",
            headers: &[],
        },
    );
    assert_eq!(e.route.unwrap().virtual_service, "team/shop-routes");
}

/// A backend that sends its headers and a first chunk at once, and the rest after `stall`.
async fn stalling_backend(stall: Duration) -> std::net::SocketAddr {
    use futures_util::StreamExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    let frames = futures_util::stream::iter(0..2).then(move |i| async move {
                        if i == 1 {
                            tokio::time::sleep(stall).await;
                        }
                        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
                            bytes::Bytes::from_static(b"chunk;"),
                        ))
                    });
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::StreamBody::new(frames),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_timeout_also_covers_a_stalled_body() {
    use http_body_util::BodyExt;
    let backend = stalling_backend(Duration::from_secs(3)).await;
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 8000, name: http, protocol: HTTP}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]\n---\n",
        backend.port()
    ) + &app_routes(
        "    - {match: [{uri: {prefix: /limited}}], timeout: 500ms, route: [{destination: {host: app}}]}\n    - route: [{destination: {host: app}}]",
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let addr = gw.local_addr(80).unwrap();
    let fetch = |path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", "a")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let t = Instant::now();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await;
        (body.map(|b| b.to_bytes()), t.elapsed())
    };
    let (body, took) = fetch("/limited").await;
    assert!(body.is_err(), "the body must be cut: {body:?}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let (body, took) = fetch("/free").await;
    assert_eq!(&body.unwrap()[..], b"chunk;chunk;");
    assert!(took >= Duration::from_millis(2900));
}

//! DestinationRule traffic policy over real sockets: circuit breakers (503 UO, never more
//! connections than allowed), outlier ejection and return, consistent hashing by header, cookie,
//! source IP and query parameter, subset and port-level inheritance, TCP connect limits.
mod common;
use bytes::Bytes;
use common::*;
use sluice_echo::{Echo, Identity};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn pods(names: &[(&str, &str)]) -> Vec<Echo> {
    backends(
        names
            .iter()
            .map(|(version, pod)| Identity::new("app", version, pod))
            .collect(),
    )
    .await
}

/// Service `app` on `pods`, a DestinationRule for it whose spec continues with `rule` (YAML at
/// two spaces), and a route to `destination` (`{host: app}` by default) without retries.
fn serve(pods: &[Echo], rule: &str, destination: &str) -> sluice_proxy::Gateway {
    let weights: Vec<(&Echo, u32)> = pods.iter().map(|p| (p, 1)).collect();
    let yaml = service_entry("app", &weights)
        + "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: app, namespace: default}\n\
           spec:\n  host: app.default.svc.cluster.local\n"
        + rule
        + "\n---\n"
        + &app_routes(&format!(
            "    - route: [{{destination: {destination}}}]\n      retries: {{attempts: 0}}\n"
        ));
    gateway(snapshot(&yaml, &[]), test_options())
}

fn client(gw: &sluice_proxy::Gateway) -> TestClient {
    TestClient::http1(gw.local_addr(80).unwrap())
}

/// An HTTP/1.1 backend that answers after `delay` and counts its open connections, keeping the
/// highest count seen.
async fn slow_backend(delay: Duration) -> (SocketAddr, Arc<AtomicU32>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let open = Arc::new(AtomicU32::new(0));
    let max = Arc::new(AtomicU32::new(0));
    let seen = max.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let n = open.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            let open = open.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), service)
                    .await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

/// Service `app` on one backend at `addr`, its DestinationRule's `connectionPool` being `pool`.
fn pool_yaml(addr: SocketAddr, pool: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 8000, name: http, protocol: HTTP}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]\n---\n\
         apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  host: app.default.svc.cluster.local\n  trafficPolicy: {{connectionPool: {pool}}}\n---\n{}",
        addr.port(),
        app_routes("    - route: [{destination: {host: app}}]\n      retries: {attempts: 0}\n")
    )
}

/// Sends 20 requests at once.
async fn burst(c: &TestClient) -> Vec<Reply> {
    futures_util::future::join_all((0..20).map(|_| {
        let c = c.clone();
        async move { c.get("app.example.com", "/").await }
    }))
    .await
}

/// The circuit-breaking task's rule (`maxConnections: 1`, `http1MaxPendingRequests: 1`) under
/// 20 concurrent requests: one is served, one waits, the rest get 503 UO at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_overflow_gets_503_uo_and_the_backend_never_sees_more_than_the_limit() {
    let (addr, max_open) = slow_backend(Duration::from_millis(300)).await;
    let limited = "{tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}";
    let gw = gateway(snapshot(&pool_yaml(addr, limited), &[]), test_options());
    let c = client(&gw);
    let started = Instant::now();
    let replies = burst(&c).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let overflow: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + overflow.len(), 20);
    // One on the connection, one pending; both are served, one after the other.
    assert!(ok >= 2, "{ok} served");
    assert!(overflow.len() >= 15, "{} overflowed", overflow.len());
    for r in &overflow {
        assert_eq!(r.headers["x-envoy-overloaded"], "true");
        assert!(String::from_utf8_lossy(&r.body).contains("overflow"));
    }
    assert_eq!(
        max_open.load(Ordering::SeqCst),
        1,
        "the backend saw more than one connection"
    );
    // Overflow is immediate: nothing queued behind the served requests.
    assert!(started.elapsed() < Duration::from_secs(2));

    // Without limits the same burst is all served, on many connections.
    let (addr, max_open) = slow_backend(Duration::from_millis(100)).await;
    gw.apply(snapshot(
        &pool_yaml(addr, "{tcp: {connectTimeout: 1s}}"),
        &[],
    ))
    .unwrap();
    let replies = burst(&c).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(max_open.load(Ordering::SeqCst) > 1);
}

/// `http2MaxRequests` caps requests in flight to the cluster, whatever the protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_caps_requests_in_flight() {
    let p = pods(&[("v1", "a"), ("v1", "b")]).await;
    let gw = serve(
        &p,
        "  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 2}}}",
        "{host: app}",
    );
    let c = client(&gw);
    let statuses = futures_util::future::join_all((0..8).map(|_| {
        let c = c.clone();
        async move { c.get("app.example.com", "/?sleep_ms=300").await.status }
    }))
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 6);
    // Once they are done, the limit is free again.
    assert_eq!(c.get("app.example.com", "/").await.status, 200);
}

/// A GET for `app.example.com` with one extra header.
async fn get_with(c: &TestClient, name: &str, value: &str) -> Reply {
    c.send(
        "GET",
        "app.example.com",
        "/",
        &[(name, value)],
        Bytes::new(),
    )
    .await
}

/// Sends `n` requests one after another; the pods that answered 200 and the count of 500s.
async fn sample(c: &TestClient, n: usize) -> (BTreeSet<String>, usize) {
    let mut pods = BTreeSet::new();
    let mut errors = 0;
    for _ in 0..n {
        let r = c.get("app.example.com", "/").await;
        match r.status.as_u16() {
            200 => {
                pods.insert(r.who());
            }
            500 => errors += 1,
            s => panic!("unexpected {s}"),
        }
    }
    (pods, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pod_is_ejected_after_the_count_and_returns_after_the_ejection_time() {
    let p = pods(&[("v1", "good"), ("v1", "bad")]).await;
    p[1].fail_next(1_000_000, 500);
    let gw = serve(
        &p,
        "  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: \
         {consecutive5xxErrors: 3, interval: 50ms, baseEjectionTime: 400ms, maxEjectionPercent: 100}",
        "{host: app}",
    );
    let c = client(&gw);
    // Round robin: the bad pod answers every other request until its third 500 ejects it.
    let (pods_seen, errors) = sample(&c, 20).await;
    assert_eq!(errors, 3, "ejected after exactly consecutive5xxErrors");
    assert_eq!(pods_seen, BTreeSet::from(["good".to_string()]));
    let ejected_at = Instant::now();
    let bad_hits = p[1].hits();
    // Healed, it still gets nothing while ejected...
    p[1].fail_next(0, 500);
    let (_, errors) = sample(&c, 10).await;
    assert_eq!(errors, 0);
    if ejected_at.elapsed() < Duration::from_millis(350) {
        assert_eq!(p[1].hits(), bad_hits, "an ejected pod got traffic");
    }
    // ...and is back after baseEjectionTime (checked by the next sweep).
    let deadline = Instant::now() + Duration::from_secs(3);
    while p[1].hits() == bad_hits {
        assert!(Instant::now() < deadline, "the pod never returned");
        c.get("app.example.com", "/").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ejected_at.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_ejection_percent_and_min_health_percent_keep_pods_in_service() {
    let p = pods(&[("v1", "good"), ("v1", "bad")]).await;
    p[1].fail_next(1_000_000, 500);
    // Istio's default 10% of 2 pods: Envoy ejects nobody.
    let gw = serve(
        &p,
        "  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: \
         {consecutive5xxErrors: 2, interval: 50ms, baseEjectionTime: 10s}",
        "{host: app}",
    );
    let (_, errors) = sample(&client(&gw), 20).await;
    assert_eq!(errors, 10, "nothing may be ejected at 10% of two pods");

    // 100% may go, but below 60% healthy the cluster panics and uses every pod.
    let gw = serve(
        &p,
        "  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: \
         {consecutive5xxErrors: 2, interval: 50ms, baseEjectionTime: 10s, maxEjectionPercent: 100, minHealthPercent: 60}",
        "{host: app}",
    );
    let (_, errors) = sample(&client(&gw), 20).await;
    assert_eq!(errors, 10, "panic mode balances across ejected pods too");
}

/// Three pods behind a rule hashing by `hash` (YAML of `consistentHash`).
async fn hashed(hash: &str) -> (Vec<Echo>, sluice_proxy::Gateway) {
    let p = pods(&[("v1", "a"), ("v1", "b"), ("v1", "c")]).await;
    let gw = serve(
        &p,
        &format!("  trafficPolicy: {{loadBalancer: {{consistentHash: {hash}}}}}"),
        "{host: app}",
    );
    (p, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_header_or_query_parameter_always_reaches_the_same_pod() {
    for (hash, request) in [
        ("{httpHeaderName: x-user}", "header"),
        (
            "{httpHeaderName: x-user, ringHash: {minimumRingSize: 2048}}",
            "header",
        ),
        ("{httpQueryParameterName: user}", "query"),
        (
            "{httpQueryParameterName: user, maglev: {tableSize: 1031}}",
            "query",
        ),
    ] {
        let (_p, gw) = hashed(hash).await;
        let c = client(&gw);
        let mut all = BTreeSet::new();
        for user in 0..12 {
            let user = format!("user-{user}");
            let mut seen = BTreeSet::new();
            for _ in 0..5 {
                let r = match request {
                    "header" => get_with(&c, "x-user", &user).await,
                    _ => {
                        c.get("app.example.com", &format!("/?x=1&user={user}"))
                            .await
                    }
                };
                seen.insert(r.who());
            }
            assert_eq!(seen.len(), 1, "{hash}: {user} reached {seen:?}");
            all.extend(seen);
        }
        // Twelve users on three pods: some spread (all on one pod has odds of 1 in 177,147).
        assert!(all.len() > 1, "{hash}: every user on {all:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_is_set_when_absent_and_then_keeps_the_pod() {
    let (_p, gw) = hashed("{httpCookie: {name: session, path: /, ttl: 60s}}").await;
    let c = client(&gw);
    let first = c.get("app.example.com", "/").await;
    assert_eq!(first.status, 200);
    let set = first.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("session=\"") && set.ends_with("; Max-Age=60; Path=/; HttpOnly"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    for _ in 0..10 {
        let r = get_with(&c, "cookie", &cookie).await;
        assert_eq!(r.who(), first.who());
        assert!(
            r.headers.get("set-cookie").is_none(),
            "a cookie already sent is not set again"
        );
    }
    // Other cookie values spread over the pods.
    let mut all = BTreeSet::new();
    for v in 0..12 {
        let cookie = format!("session=\"v{v}\"");
        let r = get_with(&c, "cookie", &cookie).await;
        all.insert(r.who());
    }
    assert!(all.len() > 1);

    // Without a ttl nothing is set and requests without the cookie are balanced as usual.
    let (_p, gw) = hashed("{httpCookie: {name: session}}").await;
    let r = client(&gw).get("app.example.com", "/").await;
    assert!(r.headers.get("set-cookie").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_source_ip_reaches_the_same_pod_on_every_connection() {
    let (_p, gw) = hashed("{useSourceIp: true}").await;
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        // A new client each time: a new connection from a new port, the same address.
        seen.insert(client(&gw).get("app.example.com", "/").await.who());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

/// A subset's `trafficPolicy` replaces the top-level load balancer for that subset only; a
/// `portLevelSettings` entry replaces the top-level policy for its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subset_and_port_level_settings_override_as_istio_does() {
    let p = pods(&[
        ("v1", "v1-a"),
        ("v1", "v1-b"),
        ("v2", "v2-a"),
        ("v2", "v2-b"),
    ])
    .await;
    let rule = "  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}\n  subsets:\n  \
                - {name: v1, labels: {version: v1}}\n  \
                - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}";
    let pods_for = |gw: &sluice_proxy::Gateway| {
        let c = client(gw);
        async move {
            let mut seen = BTreeSet::new();
            for _ in 0..8 {
                let r = get_with(&c, "x-user", "alice").await;
                seen.insert(r.who());
            }
            seen
        }
    };
    // v1 inherits the hash: one pod. v2 replaces it with round robin: both pods.
    let v1 = serve(&p, rule, "{host: app, subset: v1}");
    assert_eq!(pods_for(&v1).await.len(), 1);
    let v2 = serve(&p, rule, "{host: app, subset: v2}");
    assert_eq!(pods_for(&v2).await.len(), 2);
    // The port-level entry for 8000 replaces the whole top-level policy: no hash on that port.
    let port_level = "  trafficPolicy:\n    loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n    \
                      portLevelSettings: [{port: {number: 8000}, loadBalancer: {simple: ROUND_ROBIN}}]";
    let gw = serve(&p[..2], port_level, "{host: app}");
    assert_eq!(pods_for(&gw).await.len(), 2);
    let other_port = port_level.replace("number: 8000", "number: 9000");
    let gw = serve(&p[..2], &other_port, "{host: app}");
    assert_eq!(pods_for(&gw).await.len(), 1);
}

/// Runtime state survives a reload for the endpoints that stay: an ejected pod stays ejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejection_survives_a_reload() {
    let p = pods(&[("v1", "good"), ("v1", "bad")]).await;
    p[1].fail_next(1_000_000, 500);
    let rule = "  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: \
                {consecutive5xxErrors: 1, interval: 50ms, baseEjectionTime: 10s, maxEjectionPercent: 100}";
    let gw = serve(&p, rule, "{host: app}");
    let c = client(&gw);
    let (_, errors) = sample(&c, 6).await;
    assert_eq!(errors, 1);
    // The same endpoints under a changed route: the ejection holds.
    let weights: Vec<(&Echo, u32)> = p.iter().map(|e| (e, 1)).collect();
    let yaml = service_entry("app", &weights)
        + "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: app, namespace: default}\n\
           spec:\n  host: app.default.svc.cluster.local\n"
        + rule
        + "\n---\n"
        + &app_routes("    - route: [{destination: {host: app}}]\n      retries: {attempts: 0}\n      timeout: 5s\n");
    gw.apply(snapshot(&yaml, &[])).unwrap();
    let (pods_seen, errors) = sample(&c, 6).await;
    assert_eq!((errors, pods_seen.len()), (0, 1));
}

/// TCP routes get the cluster's `maxConnections` and `connectTimeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_limited_and_connects_time_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A backend that greets and holds each connection.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicU32::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = s.write_all(b"hi\n").await;
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    // A backend that never accepts: a full accept queue drops the SYN, so connects hang.
    let hang = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    hang.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    hang.listen(0).unwrap();
    let hang_addr = hang.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(hang_addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let yaml = |addr: SocketAddr, pool: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: db, namespace: default}}\n\
             spec:\n  hosts: [db.default.svc.cluster.local]\n  resolution: STATIC\n  \
             ports: [{{number: 7000, name: tcp, protocol: TCP}}]\n  \
             endpoints: [{{address: 127.0.0.1, ports: {{tcp: {}}}}}]\n---\n\
             apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: db, namespace: default}}\n\
             spec:\n  host: db.default.svc.cluster.local\n  trafficPolicy: {{connectionPool: {{tcp: {pool}}}}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\n\
             spec:\n  selector: {{istio: ingressgateway}}\n  servers: [{{port: {{number: 9000, name: tcp, protocol: TCP}}, hosts: [\"*\"]}}]\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: db, namespace: default}}\n\
             spec:\n  hosts: [\"*\"]\n  gateways: [gw]\n  tcp: [{{route: [{{destination: {{host: db, port: {{number: 7000}}}}}}]}}]\n",
            addr.port()
        )
    };
    let gw = gateway(
        snapshot(&yaml(backend, "{maxConnections: 1}"), &[]),
        test_options(),
    );
    let front = gw.local_addr(9000).unwrap();
    let mut first = tokio::net::TcpStream::connect(front).await.unwrap();
    let mut buf = [0u8; 3];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi\n");
    // The second connection is closed by the gateway without reaching the backend.
    let mut second = tokio::net::TcpStream::connect(front).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), second.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    drop(first);

    // connectTimeout: 300ms against the backend that never accepts.
    gw.apply(snapshot(&yaml(hang_addr, "{connectTimeout: 300ms}"), &[]))
        .unwrap();
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(front).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("the gateway gave up on the connect")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    drop(fillers);
}

/// Pods in three regions behind an instance in `us-east/zone-a`, and a DestinationRule whose
/// `trafficPolicy` is `policy`.
fn locality_world(p: &[Echo], policy: &str) -> sluice_proxy::Gateway {
    let localities = ["us-east/zone-a", "us-west/zone-b", "eu-west/zone-c"];
    let endpoints: String = p
        .iter()
        .zip(localities)
        .map(|(e, l)| {
            format!(
                "  - {{address: 127.0.0.1, ports: {{http: {}}}, locality: {l}}}\n",
                e.addr.port()
            )
        })
        .collect();
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 8000, name: http, protocol: HTTP}}]\n  endpoints:\n{endpoints}---\n\
         apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  host: app.default.svc.cluster.local\n  trafficPolicy: {policy}\n---\n{}",
        app_routes("    - route: [{destination: {host: app}}]\n      retries: {attempts: 0}\n")
    );
    let id = sluice_compile::GatewayIdentity {
        locality: Some("us-east/zone-a".into()),
        ..Default::default()
    };
    gateway(snapshot_for(&yaml, &id), test_options())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locality_failover_moves_traffic_when_the_local_pods_are_ejected() {
    let p = pods(&[("v1", "us-east"), ("v1", "us-west"), ("v1", "eu-west")]).await;
    let gw = locality_world(
        &p,
        "{outlierDetection: {consecutive5xxErrors: 1, interval: 50ms, baseEjectionTime: 10s, \
         maxEjectionPercent: 100}, loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: eu-west}]}}}",
    );
    let c = client(&gw);
    let (seen, _) = sample(&c, 10).await;
    assert_eq!(
        seen,
        BTreeSet::from(["us-east".to_string()]),
        "the local pod first"
    );
    p[0].fail_next(1_000_000, 500);
    let (seen, errors) = sample(&c, 10).await;
    assert_eq!(errors, 1, "one 500 ejects the local pod");
    // The failover rule sends us-east's traffic to eu-west before any other region.
    assert_eq!(seen, BTreeSet::from(["eu-west".to_string()]));

    // Istio's rule: without outlier detection nothing fails over, so locality is not used.
    let gw = locality_world(&p[1..], "{loadBalancer: {simple: ROUND_ROBIN}}");
    let (seen, _) = sample(&client(&gw), 10).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
}

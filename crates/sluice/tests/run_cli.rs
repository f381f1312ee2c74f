//! `sluice run` and `sluice demo` as users start them: a real process, real files, signals.
#[path = "../../sluice-proxy/tests/common/otlp.rs"]
mod otlp;
#[path = "common/process.rs"]
mod process;
#[path = "../../sluice-proxy/tests/common/raw.rs"]
mod raw;
#[path = "common/tls.rs"]
mod tls;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use process::Sluice;
use sluice_echo::{Echo, Identity};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tls::{presented_cert, self_signed, try_presented_cert};

fn gateway_yaml() -> &'static str {
    r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*"]
"#
}

/// A VirtualService sending `/` to the pod on `port`, via a ServiceEntry.
fn route_yaml(port: u16) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: app, namespace: default}}
spec:
  hosts: [app.default.svc.cluster.local]
  resolution: STATIC
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
    - route: [{{destination: {{host: app, port: {{number: 8000}}}}}}]
"#
    )
}

/// An empty directory of this test's own.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    // Write then rename, as editors and ConfigMap updates do: the reader never sees half a file.
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> (u16, String) {
    let req = hyper::Request::get(format!("http://{addr}{path}"))
        .header("host", "app.example")
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.expect("request failed");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let pod = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["pod"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_nothing_and_broken_config_changes_nothing() {
    let a = pod("v1", "pod-a").await;
    let b = pod("v2", "pod-b").await;
    let dir = scratch_dir("run");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    let routes = dir.join("routes.yaml");
    write(&routes, &route_yaml(a.addr.port()));

    let sluice = Sluice::run(&dir, "80=0", &[]);
    let addr = sluice.listening();
    let c = client();
    assert_eq!(get(&c, addr, "/").await, (200, "pod-a".into()));

    // Load from four clients while the routes flip fifty times.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (c, stop) = (c.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || ok < 1250 {
                match get(&c, addr, "/").await {
                    (200, _) => ok += 1,
                    other => failed.push(other),
                }
            }
            (ok, failed)
        }));
    }
    for i in 1..=50 {
        let target = if i % 2 == 1 { &b } else { &a };
        write(&routes, &route_yaml(target.addr.port()));
        sluice.wait_for("configuration reloaded", i);
        // Once reloaded, new requests go where the new file says.
        let deadline = Instant::now() + Duration::from_secs(5);
        while get(&c, addr, "/").await.1 != target.id.pod {
            assert!(Instant::now() < deadline, "reload {i} did not take effect");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during reloads: {failed:?}"
        );
        total += ok;
    }
    assert!(total >= 5000, "{total}");
    assert!(sluice.count("configuration reloaded") >= 50);

    // A broken file is refused; the last good configuration (pod-a) keeps serving.
    let good = sluice.count("configuration reloaded");
    write(
        &routes,
        &route_yaml(b.addr.port()).replace("route:", "rout:"),
    );
    sluice.wait_for("configuration has errors", 1);
    assert_eq!(get(&c, addr, "/").await, (200, "pod-a".into()));
    assert_eq!(sluice.count("configuration reloaded"), good);
    assert!(
        sluice.count("unknown field") >= 1,
        "the refusal names the error"
    );

    // SIGHUP reloads too (here: after the file was fixed behind the watcher's back).
    write(&routes, &route_yaml(b.addr.port()));
    sluice.wait_for("configuration reloaded", good + 1);
    sluice.signal("-HUP");
    sluice.wait_for("SIGHUP", 1);
    assert_eq!(get(&c, addr, "/").await, (200, "pod-b".into()));

    // SIGTERM drains and exits cleanly.
    let mut sluice = sluice;
    sluice.signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = sluice.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "sluice did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_refuses_to_start_on_a_broken_configuration() {
    let dir = scratch_dir("run-bad");
    write(
        &dir.join("gw.yaml"),
        &gateway_yaml().replace("servers:", "server:"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "--config",
            dir.to_str().unwrap(),
            "--port-map",
            "80=0",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("unknown field") && stderr.contains("gw.yaml:7"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_seed_without_files() {
    let sluice = Sluice::start(&["demo", "--port", "0"]);
    let addr = sluice.listening();
    let c = client();
    let mut versions = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let (status, pod) = get(&c, addr, "/users").await;
        assert_eq!(status, 200);
        *versions
            .entry(pod.split('-').nth(1).unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(
        versions.keys().collect::<Vec<_>>(),
        ["v1", "v3"],
        "{versions:?}"
    );
    assert!(versions["v1"] > versions["v3"], "{versions:?}");
    assert_eq!(get(&c, addr, "/other").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_files_are_picked_up() {
    let root = scratch_dir("certs");
    let (config_dir, cert_dir) = (root.join("config"), root.join("certs"));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::create_dir_all(&cert_dir).unwrap();
    let (cert, key) = self_signed("shop.example");
    write(&cert_dir.join("tls.crt"), &cert);
    write(&cert_dir.join("tls.key"), &key);
    write(
        &config_dir.join("gateway.yaml"),
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n    - port: {{number: 443, name: https, protocol: HTTPS}}\n      hosts: [\"*\"]\n      tls: {{mode: SIMPLE, serverCertificate: {0}/tls.crt, privateKey: {0}/tls.key}}\n",
            cert_dir.display()
        ),
    );
    let sluice = Sluice::run(&config_dir, "443=0", &[]);
    let addr = sluice.listening();
    let first = presented_cert(addr, "shop.example").await;

    // Handshakes from two clients the whole time: none may fail across the rotation.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match try_presented_cert(addr, "shop.example").await {
                        Ok(_) => ok += 1,
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    // Rotate the files in place (key first, then certificate), as cert-manager or an agent does.
    let (cert2, key2) = self_signed("shop.example");
    write(&cert_dir.join("tls.key"), &key2);
    write(&cert_dir.join("tls.crt"), &cert2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = presented_cert(addr, "shop.example").await;
        if now != first {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was not picked up; log:\n{}",
            sluice.log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "{} of {} handshakes failed: {failed:?}",
            failed.len(),
            ok
        );
        assert!(ok > 0);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_names_status_flags_and_upstream() {
    let pod = pod("v1", "pod-a").await;
    let dir = scratch_dir("access");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    // A closed port for /dead: a connect failure (UF) still names where it went.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let routes = route_yaml(pod.addr.port()).replace(
        "    - route: [{destination: {host: app, port: {number: 8000}}}]",
        "    - match: [{uri: {prefix: /app}}]\n      route: [{destination: {host: app, port: {number: 8000}}}]\n    - match: [{uri: {prefix: /dead}}]\n      route: [{destination: {host: dead.default.svc.cluster.local, port: {number: 8000}}}]\n      retries: {attempts: 0}\n    - match: [{uri: {prefix: /slow}}]\n      fault: {delay: {fixedDelay: 10ms, percentage: {value: 100}}}\n      route: [{destination: {host: app, port: {number: 8000}}}]\n    - match: [{uri: {prefix: /grpc-abort}}]\n      fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n      route: [{destination: {host: app, port: {number: 8000}}}]",
    ) + &format!("---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: dead, namespace: default}}\nspec:\n  hosts: [dead.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{{number: 8000, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 127.0.0.1, ports: {{http: {closed}}}}}]\n");
    write(&dir.join("routes.yaml"), &routes);
    let sluice = Sluice::run(&dir, "80=0", &["--access-log"]);
    let addr = sluice.listening();
    let c = client();
    assert_eq!(get(&c, addr, "/app/x").await.0, 200);
    assert_eq!(get(&c, addr, "/nothing").await.0, 404);
    sluice.wait_for("\"GET /nothing HTTP/1.1\"", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    assert!(
        log.contains("\"GET /app/x HTTP/1.1\" 200 - via_upstream"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "\"127.0.0.1:{}\" outbound|8000||app.default.svc.cluster.local ",
            pod.addr.port()
        )),
        "{log}"
    );
    assert!(
        log.contains("\"GET /nothing HTTP/1.1\" 404 NR route_not_found"),
        "{log}"
    );
    assert_eq!(get(&c, addr, "/dead").await.0, 503);
    sluice.wait_for("\"GET /dead HTTP/1.1\"", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    assert!(
        log.contains("\"GET /dead HTTP/1.1\" 503 UF upstream_reset_before_response_started{connection_failure}") && log.contains(&format!("\"127.0.0.1:{closed}\" outbound|8000||dead.default.svc.cluster.local ")),
        "{log}"
    );
    // A gRPC abort is a fault too.
    assert_eq!(get(&c, addr, "/grpc-abort").await.0, 200);
    sluice.wait_for("\"GET /grpc-abort HTTP/1.1\"", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    assert!(
        log.contains("\"GET /grpc-abort HTTP/1.1\" 200 FI fault_filter_abort"),
        "{log}"
    );
    assert_eq!(get(&c, addr, "/slow").await.0, 200);
    sluice.wait_for("\"GET /slow HTTP/1.1\"", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    assert!(
        log.contains("\"GET /slow HTTP/1.1\" 200 DI via_upstream"),
        "{log}"
    );
    // The request id the gateway made is the one the backend got and the line names.
    let req = hyper::Request::get(format!("http://{addr}/app/id"))
        .header("host", "app.example")
        .body(Empty::new())
        .unwrap();
    let body = c.request(req).await.unwrap().into_body().collect().await;
    let seen: serde_json::Value = serde_json::from_slice(&body.unwrap().to_bytes()).unwrap();
    let id = seen["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_string();
    sluice.wait_for("\"GET /app/id HTTP/1.1\"", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    assert!(
        log.contains(&format!(" \"{id}\" \"app.example\" ")),
        "{id}: {log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An echo backend on a free loopback port.
async fn pod(version: &str, name: &str) -> Echo {
    Echo::start(
        "127.0.0.1:0".parse().unwrap(),
        Identity::new("app", version, name),
    )
    .await
    .unwrap()
}

/// Polls `path` until the pod named `pod` answers (bounded).
async fn wait_for_pod(c: &Client<HttpConnector, Empty<Bytes>>, addr: SocketAddr, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = c
            .request(
                hyper::Request::get(format!("http://{addr}/"))
                    .header("host", "app.example")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await;
        if let Ok(resp) = seen {
            let body = resp.into_body().collect().await.map(|b| b.to_bytes());
            if body.is_ok_and(|b| String::from_utf8_lossy(&b).contains(pod)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{pod} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_directory_deleted_and_created_again_is_still_watched() {
    let a = pod("v1", "pod-a").await;
    let b = pod("v2", "pod-b").await;
    let root = scratch_dir("recreate");
    let dir = root.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(a.addr.port()));
    let sluice = Sluice::run(&dir, "80=0", &[]);
    let addr = sluice.listening();
    let c = client();
    wait_for_pod(&c, addr, "pod-a").await;

    // A deploy step: the directory goes, and comes back with new contents.
    std::fs::remove_dir_all(&dir).unwrap();
    sluice.wait_for("configuration has errors", 1);
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(b.addr.port()));
    wait_for_pod(&c, addr, "pod-b").await;
    // Later edits in the new directory are seen too.
    write(&dir.join("routes.yaml"), &route_yaml(a.addr.port()));
    wait_for_pod(&c, addr, "pod-a").await;

    // The refused load's message ends its line: every log line starts with its timestamp.
    let log = sluice.log.lock().unwrap().clone();
    for line in log
        .iter()
        .filter(|l| l.contains("configuration has errors"))
    {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a log line shares its line with the message before it: {line:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_flags_cut_responses_and_requests_cut_by_the_drain() {
    // Announces 100 bytes, sends 10, closes.
    let cut = raw::raw_backend(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
        Duration::ZERO,
    )
    .await;
    let dir = scratch_dir("cutlog");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(cut.port()));
    let sluice = Sluice::run(&dir, "80=0", &["--access-log", "--drain-timeout", "1s"]);
    let addr = sluice.listening();
    let c = client();
    let resp = c
        .request(
            hyper::Request::get(format!("http://{addr}/cut"))
                .header("host", "app.example")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.into_body().collect().await.is_err(),
        "the body was cut"
    );
    sluice.wait_for("\"GET /cut HTTP/1.1\"", 1);
    let line = sluice
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("GET /cut"))
        .cloned()
        .unwrap();
    assert!(
        line.contains("\" 200 UC upstream_reset_before_response_started{connection_termination}"),
        "{line}"
    );

    // A backend that never answers, and a SIGTERM whose drain gives up on it.
    let silent = raw::raw_backend(b"", Duration::from_secs(30)).await;
    write(&dir.join("routes.yaml"), &route_yaml(silent.port()));
    sluice.wait_for("configuration reloaded", 1);
    let pending = tokio::spawn({
        let c = c.clone();
        async move {
            c.request(
                hyper::Request::get(format!("http://{addr}/stuck"))
                    .header("host", "app.example")
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sluice.signal("-TERM");
    sluice.wait_for("\"GET /stuck HTTP/1.1\"", 1);
    let line = sluice
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("GET /stuck"))
        .cloned()
        .unwrap();
    assert!(
        line.contains("\" 0 DC downstream_remote_disconnect"),
        "{line}"
    );
    let _ = pending.await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_takes_over_the_port_with_reuse_port() {
    let pod = pod("v1", "pod-a").await;
    let dir = scratch_dir("takeover");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(pod.addr.port()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let map = format!("80={port}");
    let mut old = Sluice::run(&dir, &map, &["--reuse-port", "--drain-timeout", "2s"]);
    let addr = old.listening();

    // A new connection per request, so every request tests where the kernel sends it.
    let c: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn({
        let (c, stop) = (c.clone(), stop.clone());
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let req = hyper::Request::get(format!("http://{addr}/"))
                    .header("host", "app.example")
                    .body(Empty::new())
                    .unwrap();
                match c.request(req).await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The upgrade: the new binary binds the same port, then the old one drains and exits.
    let new = Sluice::run(&dir, &map, &["--reuse-port"]);
    assert_eq!(new.listening(), addr);
    old.signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the old instance did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served_before = pod.hits();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    // A connection the kernel queued on the old socket after its last accept is reset when the
    // socket closes (SO_REUSEPORT has no handover; Linux's net.ipv4.tcp_migrate_req would move
    // it): at most one such connect failure in a thousand, and no other failure at all.
    let (connect, other): (Vec<_>, Vec<_>) = failed.iter().partition(|f| f.contains("(Connect)"));
    assert!(
        other.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok
    );
    assert!(
        connect.len() as u32 * 1000 <= ok,
        "{} connections reset of {}: {failed:?}",
        connect.len(),
        ok
    );
    assert!(pod.hits() > served_before, "the new instance serves");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let pod = pod("v1", "pod-a").await;
    let dir = scratch_dir("drain");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(pod.addr.port()));
    let mut sluice = Sluice::run(&dir, "80=0", &["--drain-timeout", "5s"]);
    let addr = sluice.listening();
    let c = client();
    // Twenty slow requests in flight when SIGTERM comes: every one gets its answer.
    let in_flight: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { get(&c, addr, "/slow?sleep_ms=800").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sluice.signal("-TERM");
    for r in in_flight {
        assert_eq!(r.await.unwrap(), (200, "pod-a".into()));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = sluice.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sluice did not exit after the drain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// TCP connections are access-logged too: bytes both ways and the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_names_tcp_connections() {
    let pod = pod("v1", "pod-a").await;
    let dir = scratch_dir("access-tcp");
    write(
        &dir.join("gateway.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n    - port: {number: 9000, name: tcp, protocol: TCP}\n      hosts: [\"*\"]\n",
    );
    write(
        &dir.join("routes.yaml"),
        &route_yaml(pod.addr.port()).replace(
            "  http:\n    - route: [{destination: {host: app, port: {number: 8000}}}]",
            "  tcp:\n    - route: [{destination: {host: app, port: {number: 8000}}}]",
        ),
    );
    let sluice = Sluice::run(&dir, "9000=0", &["--access-log", "json"]);
    let addr = sluice.listening();
    let (status, who) = get(&client(), addr, "/over-tcp").await;
    assert_eq!((status, who.as_str()), (200, "pod-a"));
    // Istio's JSON encoding, one object per line on stdout.
    sluice.wait_for("\"upstream_cluster\":\"outbound|8000||app", 1);
    let log = sluice.log.lock().unwrap().join("\n");
    let line: serde_json::Value = log
        .lines()
        .find(|l| l.starts_with('{') && l.contains("\"upstream_cluster\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(line["response_flags"], "-", "{line}");
    assert_eq!(line["method"], serde_json::Value::Null, "{line}");
    assert_eq!(
        line["upstream_host"],
        format!("127.0.0.1:{}", pod.addr.port()),
        "{line}"
    );
    assert!(
        line["bytes_received"].as_u64() > Some(30) && line["bytes_sent"].as_u64() > Some(100),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--otlp-endpoint`: the backend is told the gateway's span, the span reaches the collector
/// with the flags' service name and the workload's Istio tags, and SIGTERM sends what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_otlp_collector_and_sigterm_sends_the_last_ones() {
    let (collector, otlp_addr) = otlp::Collector::start().await;
    let pod = pod("v1", "pod-a").await;
    let dir = scratch_dir("otlp");
    write(&dir.join("gateway.yaml"), gateway_yaml());
    write(&dir.join("routes.yaml"), &route_yaml(pod.addr.port()));
    let endpoint = format!("http://{otlp_addr}");
    let mut sluice = Sluice::run(
        &dir,
        "80=0",
        &[
            "--otlp-endpoint",
            &endpoint,
            "--otlp-service-name",
            "edge",
            "--gateway-labels",
            "istio=ingressgateway,app=edge-gw",
            "--namespace",
            "gateways",
        ],
    );
    let addr = sluice.listening();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = hyper::Request::get(format!("http://{addr}/"))
        .header("host", "app.example")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(Empty::new())
        .unwrap();
    let body = client().request(req).await.unwrap().into_body().collect();
    let seen: serde_json::Value = serde_json::from_slice(&body.await.unwrap().to_bytes()).unwrap();
    let tp = seen["headers"]["traceparent"].as_str().unwrap().to_string();
    assert!(
        tp.starts_with(&format!("00-{trace}-")) && tp.ends_with("-01"),
        "{tp}"
    );
    // Spans leave every 5 s, or at SIGTERM once the drain is over.
    let asked = Instant::now();
    sluice.signal("-TERM");
    let deadline = asked + Duration::from_secs(15);
    while sluice.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sluice did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "exited by the drain, not a flush tick"
    );
    let spans = collector.spans.lock().unwrap().clone();
    let (resource, span) = spans
        .iter()
        .find(|(_, s)| otlp::hex(&s.trace_id) == trace)
        .unwrap_or_else(|| panic!("no span at exit; log:\n{}", sluice.dump()));
    assert_eq!(tp, format!("00-{trace}-{}-01", otlp::hex(&span.span_id)));
    assert_eq!(span.name, "app.default.svc.cluster.local:8000/*");
    assert_eq!(
        otlp::attr(resource, "service.name").as_deref(),
        Some("edge")
    );
    for (key, value) in [
        ("istio.canonical_service", "edge-gw"),
        ("istio.namespace", "gateways"),
        ("server.address", "app.example"),
    ] {
        assert_eq!(
            otlp::attr(&span.attributes, key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn otlp_flags_are_checked_before_serving() {
    for (args, expected) in [
        (
            ["--otlp-endpoint", "https://collector:4318"].as_slice(),
            "https is not supported",
        ),
        (
            [
                "--otlp-endpoint",
                "http://127.0.0.1:4318",
                "--otlp-sampling",
                "1.5",
            ]
            .as_slice(),
            "--otlp-sampling 1.5",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "run",
                "--config",
                "/nonexistent",
                "--bind-address",
                "127.0.0.1",
            ])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{stderr}"
        );
    }
}

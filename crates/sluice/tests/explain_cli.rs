//! `sluice explain` on the seed configuration, JSON fields as documented.
use std::process::Command;

fn explain(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("explain")
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed"),
            "-o",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn users_split_between_subsets() {
    let (code, e) = explain(&["--host", "shop.example.com", "--path", "/users/42"]);
    assert_eq!(code, 0);
    assert_eq!(e["listener"], "0.0.0.0_80");
    assert_eq!(e["route_config"], "http.80");
    assert_eq!(e["virtual_host"], "*:80");
    assert_eq!(e["route"]["virtual_service"], "default/demo");
    assert_eq!(e["route"]["name"], "users-canary");
    assert_eq!(e["action"], "forward");
    assert_eq!(
        e["clusters"][0]["name"],
        "outbound|8000|stable|demo.default.svc.cluster.local"
    );
    assert_eq!(e["clusters"][0]["weight"], 90);
    assert_eq!(
        e["clusters"][1]["name"],
        "outbound|8000|testversion|demo.default.svc.cluster.local"
    );
    assert_eq!(e["clusters"][1]["weight"], 10);
    assert_eq!(
        e["cluster"],
        "outbound|8000|stable|demo.default.svc.cluster.local"
    );
    assert_eq!(e["error"], serde_json::Value::Null);
}

#[test]
fn unmatched_path_is_no_route_and_unknown_port_no_listener() {
    let (_, e) = explain(&["--host", "a", "--path", "/other"]);
    assert_eq!(
        (
            e["action"].as_str(),
            e["status"].as_u64(),
            e["error"].as_str()
        ),
        (Some("no_route"), Some(404), Some("no_route"))
    );
    let (_, e) = explain(&["--host", "a", "--port", "443", "--path", "/users"]);
    assert_eq!(
        (e["action"].as_str(), e["error"].as_str()),
        (Some("no_listener"), Some("no_listener"))
    );
}

#[test]
fn port_map_renames_listener() {
    let (_, e) = explain(&["--host", "a", "--path", "/tasks", "--port-map", "80=8080"]);
    assert_eq!(e["listener"], "0.0.0.0_8080");
    assert_eq!(e["route_config"], "http.8080");
    assert_eq!(
        e["cluster"],
        "outbound|8000||demo.default.svc.cluster.local"
    );
}

#[test]
fn policies_of_the_route_are_reported() {
    let (_, e) = explain(&["--host", "a", "--path", "/users/./42?x=1"]);
    let p = &e["policy"];
    assert_eq!(p["upstream_path"], "/users/42?x=1");
    assert_eq!(p["timeout"], "5s");
    assert_eq!(p["retries"]["attempts"], 3);
    assert_eq!(p["retries"]["per_try_timeout"], "2s");
    // /tasks has no `retries`: Istio's default policy.
    let (_, e) = explain(&["--host", "a", "--path", "/tasks"]);
    let r = &e["policy"]["retries"];
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["retry_on"].as_array().unwrap().len(), 5);
    assert_eq!(e["policy"]["timeout"], serde_json::Value::Null);
}

/// `sluice explain -o json` over a configuration written to a scratch file.
fn explain_yaml(yaml: &str, args: &[&str]) -> (i32, serde_json::Value) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("sluice-explain-{}-{n}.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["explain", "-o", "json", "--config"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

const EVERY_OUTCOME: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example, old.example]
  - port: {number: 80, name: http-redirect, protocol: HTTP}
    hosts: [secure.example]
    tls: {httpsRedirect: true}
  - port: {number: 81, name: http-empty, protocol: HTTP}
    hosts: [nobody.example]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [nginx.example.com]
    tls: {mode: PASSTHROUGH}
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [a.example]
  gateways: [gw]
  http: [{match: [{uri: {prefix: /api}}], route: [{destination: {host: app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: l4, namespace: default}
spec:
  hosts: [nginx.example.com]
  gateways: [gw]
  tls:
  - match: [{port: 443, sniHosts: [nginx.example.com]}]
    route: [{destination: {host: app, port: {number: 8443}}}]
  tcp:
  - route: [{destination: {host: app, port: {number: 9000}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: default}
spec:
  hosts: [app.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}, {number: 8443, name: tls, protocol: TLS}, {number: 9000, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.1}]
"#;

#[test]
fn every_outcome_has_its_name() {
    let outcome = |args: &[&str]| {
        let (code, e) = explain_yaml(EVERY_OUTCOME, args);
        assert_eq!(code, 0, "{e}");
        (
            e["action"].as_str().unwrap_or("").to_string(),
            e["status"].as_u64(),
            e["virtual_host"].as_str().map(str::to_string),
        )
    };
    assert_eq!(
        outcome(&["--host", "a.example", "--path", "/other"]),
        ("no_route".into(), Some(404), Some("a.example:80".into()))
    );
    // A server host no VirtualService binds gets no virtual host, as in Istio.
    assert_eq!(
        outcome(&["--host", "old.example"]),
        ("no_virtual_host".into(), Some(404), None)
    );
    assert_eq!(
        outcome(&["--host", "secure.example", "--path", "/x?y=1"]),
        (
            "tls_redirect".into(),
            Some(301),
            Some("secure.example:80".into())
        )
    );
    let (_, e) = explain_yaml(
        EVERY_OUTCOME,
        &["--host", "secure.example", "--path", "/x?y=1"],
    );
    assert_eq!(e["location"], "https://secure.example/x?y=1");
    assert_eq!(
        outcome(&["--host", "x.example", "--port", "81"]),
        ("no_route".into(), Some(404), Some("blackhole:81".into()))
    );
}

#[test]
fn tcp_and_tls_connections_need_no_host() {
    let (code, e) = explain_yaml(
        EVERY_OUTCOME,
        &[
            "--protocol",
            "tls",
            "--port",
            "443",
            "--sni",
            "nginx.example.com",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(e["action"], "forward");
    assert_eq!(e["route"]["list"], "tls");
    assert_eq!(e["cluster"], "outbound|8443||app.default.svc.cluster.local");
    let (_, e) = explain_yaml(
        EVERY_OUTCOME,
        &[
            "--protocol",
            "tls",
            "--port",
            "443",
            "--sni",
            "other.example.com",
        ],
    );
    assert_eq!(
        (e["action"].as_str(), e["error"].as_str()),
        (Some("no_tls_server"), Some("no_tls_server"))
    );
    let (_, e) = explain_yaml(EVERY_OUTCOME, &["--protocol", "tcp", "--port", "9000"]);
    assert_eq!(e["route"]["list"], "tcp");
    assert_eq!(e["cluster"], "outbound|9000||app.default.svc.cluster.local");
    let (_, e) = explain_yaml(EVERY_OUTCOME, &["--protocol", "tcp", "--port", "9999"]);
    assert_eq!(e["action"], "no_listener");
}

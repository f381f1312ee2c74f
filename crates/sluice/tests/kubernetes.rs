//! `sluice run --kubernetes` as a process against the API server stand-in: configuration
//! arrives by list and watch, traffic goes over real sockets to echo pods; updates, deletes, a
//! Pod relabelled from v1 to v3 moving traffic between subsets, a watch that expires, an
//! outage of the API server, and readiness along the way.
#[path = "../../sluice-kube/tests/common/apiserver.rs"]
mod apiserver;
#[path = "common/process.rs"]
mod process;
#[path = "common/tls.rs"]
mod tls;
use apiserver::ApiServer;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use process::Sluice;
use serde_json::{json, Value};
use sluice_echo::{Echo, Identity};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The address `sluice` logs on its first line containing `needle`, waited for (bounded).
async fn logged_addr(sluice: &Sluice, needle: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(addr) = sluice.logged_addr(needle) {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?}; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kubeconfig(api: &ApiServer, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\"}}\n\
             users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\n\
             current-context: test\n",
            api.url()
        ),
    )
    .unwrap();
    path
}

fn pod(name: &str, version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": "demo", "version": version}},
           "spec": {"containers": [{"name": "demo", "image": "example/demo:1"}]},
           "status": {"phase": "Running", "podIP": "127.0.0.1"}})
}

fn slice(pod: &str, port: u16) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("demo-{pod}"), "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "demo"}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true},
                          "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}}]})
}

/// The seed's VirtualService with `weights` for (stable, testversion) on /users.
fn routes(weights: (u32, u32)) -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": "demo", "namespace": "default"},
           "spec": {"hosts": ["*"], "gateways": ["istio-gateway"], "http": [
               {"name": "users-canary", "match": [{"uri": {"prefix": "/users"}}], "route": [
                   {"destination": {"host": "demo", "subset": "stable", "port": {"number": 8000}}, "weight": weights.0},
                   {"destination": {"host": "demo", "subset": "testversion", "port": {"number": 8000}}, "weight": weights.1}]},
               {"name": "tasks", "match": [{"uri": {"prefix": "/tasks"}}],
                "route": [{"destination": {"host": "demo", "port": {"number": 8000}}}]}]}})
}

/// The TLS Secret `shop-cert` in the gateway's namespace, as the API server returns it.
fn secret((cert, key): &(String, String)) -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": "shop-cert", "namespace": "istio-system"},
           "data": {"tls.crt": b64(cert), "tls.key": b64(key)}})
}

fn seed(api: &ApiServer, pods: &[(&str, &str, u16)]) {
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "istio-gateway", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
                             {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["shop.example"],
                              "tls": {"mode": "SIMPLE", "credentialName": "shop-cert"}}]}}));
    api.apply(routes((90, 10)));
    api.apply(
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"host": "demo", "subsets": [
            {"name": "stable", "labels": {"version": "v1"}},
            {"name": "testversion", "labels": {"version": "v3"}}]}}),
    );
    api.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"selector": {"app": "demo"}, "ports": [{"name": "http", "port": 8000, "targetPort": 8080}]}}));
    for (name, version, port) in pods {
        api.apply(pod(name, version));
        api.apply(slice(name, *port));
    }
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(c: &HttpClient, url: String) -> (u16, Value) {
    let resp = c.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn ready(c: &HttpClient, addr: SocketAddr) -> u16 {
    get(c, format!("http://{addr}/healthz/ready")).await.0
}

/// Pods that answered `n` requests for `path`.
async fn tally(c: &HttpClient, gw: SocketAddr, path: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let (status, v) = get(c, format!("http://{gw}{path}")).await;
        let who = if status == 200 {
            v["pod"].as_str().unwrap().to_string()
        } else {
            status.to_string()
        };
        *seen.entry(who).or_default() += 1;
    }
    seen
}

/// Waits (bounded) until requests for `path` reach exactly the pods (or statuses) in `want`.
async fn until_served_by(
    c: &HttpClient,
    gw: SocketAddr,
    path: &str,
    want: &[&str],
    sluice: &Sluice,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = tally(c, gw, path, 30).await;
        if seen.keys().map(String::as_str).eq(want.iter().copied()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} served by {seen:?}, want {want:?}; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_from_the_api_server_serves_and_follows_changes() {
    let api = ApiServer::start().await;
    api.not_served("gateway.networking.k8s.io");
    let mut echoes = Vec::new();
    let mut pods = Vec::new();
    for (name, version) in [
        ("demo-v1-a", "v1"),
        ("demo-v1-b", "v1"),
        ("demo-v3-a", "v3"),
    ] {
        let e = Echo::start(
            ([127, 0, 0, 1], 0).into(),
            Identity::new("demo", version, name),
        )
        .await
        .unwrap();
        pods.push((name, version, e.addr.port()));
        echoes.push(e);
    }
    seed(&api, &pods);
    api.apply(secret(&tls::self_signed("shop.example")));
    // A free port for 443 (80 takes port 0, and two ports cannot both map to 0).
    let https_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_map = format!("80=0,443={https_port}");
    let dir = std::env::temp_dir().join(format!("sluice-kube-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = kubeconfig(&api, &dir);

    // The API server is down when sluice starts: not ready, nothing served yet.
    api.set_down(true);
    let sluice = Sluice::start(&[
        "run",
        "--kubernetes",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--bind-address",
        "127.0.0.1",
        "--port-map",
        &port_map,
        "--ready-address",
        "127.0.0.1:0",
        "--pod-name",
        "sluice-0",
    ]);
    let c = client();
    let ready_at = logged_addr(&sluice, "readiness endpoint listening").await;
    assert_eq!(ready(&c, ready_at).await, 503);
    api.set_down(false);
    let gw = logged_addr(&sluice, "listener=\"0.0.0.0_0\"").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&c, ready_at).await != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // HTTPS with the certificate of the Secret; a rotated Secret is served without a restart.
    let https: SocketAddr = ([127, 0, 0, 1], https_port).into();
    let presented = tls::presented_cert(https, "shop.example").await;
    api.apply(secret(&tls::self_signed("shop.example")));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = tls::presented_cert(https, "shop.example").await;
        if now != presented {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated Secret was not served; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The seed's 90/10 split by the Pods' version labels.
    let users = tally(&c, gw, "/users", 1000).await;
    let v3 = users.get("demo-v3-a").copied().unwrap_or(0);
    assert!((60..=140).contains(&v3), "v3 got {v3} of 1000: {users:?}");
    assert_eq!(users.len(), 3, "{users:?}");

    // An update: everything to the testversion subset (the v3 pod).
    api.apply(routes((0, 100)));
    until_served_by(&c, gw, "/users", &["demo-v3-a"], &sluice).await;

    // A Pod relabelled from v1 to v3 joins the testversion subset.
    api.apply(pod("demo-v1-b", "v3"));
    until_served_by(&c, gw, "/users", &["demo-v1-b", "demo-v3-a"], &sluice).await;

    // The watch expires (410 Gone) and the Pod goes back to v1 meanwhile: the relist sees it.
    api.expire_watches();
    api.apply(pod("demo-v1-b", "v1"));
    until_served_by(&c, gw, "/users", &["demo-v3-a"], &sluice).await;

    // An outage: the last configuration keeps serving, readiness stays (the data plane is
    // fine) and says how stale the view is; after it, changes flow again.
    api.set_down(true);
    let (status, _) = get(&c, format!("http://{gw}/tasks")).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = c
            .get(format!("http://{ready_at}/healthz/ready").parse().unwrap())
            .await
            .unwrap();
        if resp.headers().contains_key("x-sluice-config-stale-seconds") {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never stale; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.set_down(false);
    // A delete: no route for /users any more.
    api.delete(
        "networking.istio.io/v1",
        "VirtualService",
        "default",
        "demo",
    );
    until_served_by(&c, gw, "/users", &["404"], &sluice).await;
    assert_eq!(ready(&c, ready_at).await, 200);
    // The only replica leads (and would write Gateway API status).
    let deadline = Instant::now() + Duration::from_secs(20);
    let lease = loop {
        if let Some(l) = api.get(
            "coordination.k8s.io/v1",
            "Lease",
            "istio-system",
            "sluice-status-leader",
        ) {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "no Lease; log:\n{}",
            sluice.dump()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lease["spec"]["holderIdentity"], "sluice-0");

    let _ = std::fs::remove_dir_all(&dir);
}

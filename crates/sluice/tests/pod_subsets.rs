//! Pod labels for subsets in file mode: the seed's 90/10 split by `version` labels over a
//! Kubernetes Service's EndpointSlice endpoints, whose labels come from the Pods their
//! `targetRef`s name (Pods as `kubectl get pods -o yaml` prints them: a `kind: List`).
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sluice_compile::{AnalyzeOptions, GatewayIdentity};
use sluice_echo::{Echo, Identity};
use sluice_proxy::{Gateway, ServerOptions};
use sluice_source::{Files, Pipeline, Source};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

const ROUTING: &str = include_str!("../../../examples/seed/virtualservice.yaml");
const SUBSETS: &str = include_str!("../../../examples/seed/destinationrule.yaml");
const GATEWAY: &str = include_str!("../../../examples/seed/gateway.yaml");

/// Service `demo` and one EndpointSlice per pod (each pod has its own port on loopback).
fn service_yaml(pods: &[(&str, u16)]) -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: demo, namespace: default}\n\
         spec:\n  selector: {app: demo}\n  ports:\n  - {name: http, port: 8000, targetPort: 8080}\n",
    );
    for (pod, port) in pods {
        out.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata:\n  name: demo-{pod}\n  namespace: default\n  labels: {{kubernetes.io/service-name: demo}}\n\
             addressType: IPv4\nports:\n- {{name: http, port: {port}, protocol: TCP}}\n\
             endpoints:\n- addresses: [127.0.0.1]\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, name: {pod}, namespace: default}}\n"
        ));
    }
    out
}

/// Pods the way `kubectl get pods -o yaml` prints them, status and all.
fn pods_yaml(pods: &[(&str, &str)]) -> String {
    let mut out =
        String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for (pod, version) in pods {
        out.push_str(&format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {pod}\n    namespace: default\n    \
             creationTimestamp: \"2026-11-30T10:00:00Z\"\n    generateName: demo-\n    \
             labels:\n      app: demo\n      version: {version}\n      pod-template-hash: 7d9f8\n    \
             resourceVersion: \"4711\"\n    uid: 0b6f0d1e-{pod}\n  \
             spec:\n    containers:\n    - name: demo\n      image: example/demo:1\n      ports:\n      - containerPort: 8080\n  \
             status:\n    phase: Running\n    podIP: 127.0.0.1\n"
        ));
    }
    out
}

async fn tally(addr: SocketAddr, path: &str, n: usize) -> BTreeMap<String, usize> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let resp = client
            .get(format!("http://{addr}{path}").parse().unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        *seen
            .entry(v["pod"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subsets_select_endpointslice_endpoints_by_their_pods_labels() {
    let mut echoes = Vec::new();
    let mut ports = Vec::new();
    for (pod, version) in [
        ("demo-v1-a", "v1"),
        ("demo-v1-b", "v1"),
        ("demo-v3-a", "v3"),
    ] {
        let e = Echo::start(
            ([127, 0, 0, 1], 0).into(),
            Identity::new("demo", version, pod),
        )
        .await
        .unwrap();
        ports.push((pod, e.addr.port()));
        echoes.push(e);
    }
    let dir = std::env::temp_dir().join(format!("sluice-pod-subsets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gateway.yaml"), GATEWAY).unwrap();
    std::fs::write(dir.join("routing.yaml"), ROUTING).unwrap();
    std::fs::write(dir.join("subsets.yaml"), SUBSETS).unwrap();
    std::fs::write(dir.join("service.yaml"), service_yaml(&ports)).unwrap();
    std::fs::write(
        dir.join("pods.yaml"),
        pods_yaml(&[
            ("demo-v1-a", "v1"),
            ("demo-v1-b", "v1"),
            ("demo-v3-a", "v3"),
        ]),
    )
    .unwrap();

    let source: Arc<dyn Source> = Arc::new(Files::new(vec![dir.clone()]));
    let pipeline = Pipeline::new(
        AnalyzeOptions::default(),
        GatewayIdentity {
            port_map: [(80, 0)].into(),
            ..Default::default()
        },
    );
    let built = pipeline.build(&*source).unwrap_or_else(|e| panic!("{e}"));
    let gateway = Gateway::new(ServerOptions {
        bind_address: [127, 0, 0, 1].into(),
        ..Default::default()
    });
    gateway.apply(built.snapshot.clone()).unwrap();
    let addr = gateway.local_addr(0).unwrap();

    let users = tally(addr, "/users", 1000).await;
    let v3 = users.get("demo-v3-a").copied().unwrap_or(0);
    let v1 =
        users.get("demo-v1-a").copied().unwrap_or(0) + users.get("demo-v1-b").copied().unwrap_or(0);
    assert_eq!(v1 + v3, 1000, "{users:?}");
    assert!((60..=140).contains(&v3), "v3 got {v3} of 1000: {users:?}");
    assert!(
        users.contains_key("demo-v1-a") && users.contains_key("demo-v1-b"),
        "{users:?}"
    );
    let tasks = tally(addr, "/tasks", 60).await;
    assert_eq!(tasks.len(), 3, "/tasks reaches every pod: {tasks:?}");

    // Without the Pods the endpoints carry no labels: the subsets select nothing (503).
    std::fs::remove_file(dir.join("pods.yaml")).unwrap();
    let built = pipeline.build(&*source).unwrap_or_else(|e| panic!("{e}"));
    gateway.apply(built.snapshot).unwrap();
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .get(format!("http://{addr}/users").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let _ = std::fs::remove_dir_all(&dir);
}

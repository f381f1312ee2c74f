//! Two replicas against the API server stand-in: exactly one holds the Lease and writes
//! status (by server-side apply, only when it changed); when it stops, the other takes over.
mod common;
use common::apiserver::ApiServer;
use common::until;
use serde_json::json;
use sluice_compile::GatewayIdentity;
use sluice_config::{Loader, Store};
use sluice_kube::leader::{elect, LeaseOptions};
use sluice_kube::status::{self, FIELD_MANAGER};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: sluice}
spec: {controllerName: sluice.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: default, generation: 3}
spec:
  gatewayClassName: sluice
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default, generation: 1}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
"#;

fn store(text: &str) -> Arc<Store> {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), text);
    Arc::new(Store::new(l.finish().objects))
}

fn lease(identity: &str) -> LeaseOptions {
    LeaseOptions {
        duration: Duration::from_secs(1),
        renew_every: Duration::from_millis(100),
        ..LeaseOptions::new("istio-system", "sluice-status-leader", identity)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_writes_status_and_another_takes_over() {
    let api = ApiServer::start().await;
    for o in [
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "sluice"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "default"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "app", "namespace": "default"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw", "namespace": "istio-system"},
               "spec": {"selector": {"istio": "ingressgateway"}, "ports": [{"port": 80}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
    ] {
        api.apply(o);
    }
    let (stores_tx, stores) = watch::channel(Some(store(CONFIG)));
    let replica = |name: &str| {
        let election = elect(api.client(), lease(name));
        let writer = status::spawn(
            api.client(),
            GatewayIdentity::default(),
            election.leading.clone(),
            stores.clone(),
        );
        (election, writer)
    };
    let mut replicas = vec![replica("sluice-a"), replica("sluice-b")];
    let leading = |r: &Vec<(sluice_kube::leader::Election, status::StatusWriter)>| -> Vec<bool> {
        r.iter().map(|(e, _)| *e.leading.borrow()).collect()
    };

    until("a leader", || leading(&replicas).contains(&true)).await;
    until("status written", || api.status_writes().len() == 3).await;
    // Watched for a while: never two leaders.
    for _ in 0..20 {
        assert_ne!(leading(&replicas), [true, true], "two leaders");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let leader = leading(&replicas).iter().position(|l| *l).unwrap();
    let applied = |r: &(sluice_kube::leader::Election, status::StatusWriter)| {
        r.1.writes.applied.load(Ordering::Relaxed)
    };
    assert_eq!(applied(&replicas[leader]), 3);
    assert_eq!(applied(&replicas[1 - leader]), 0);
    let writes = api.status_writes();
    assert!(
        writes.iter().all(|w| w.manager == FIELD_MANAGER),
        "{writes:?}"
    );
    let gw = writes.iter().find(|w| w.kind == "Gateway").unwrap();
    assert_eq!(
        gw.status["addresses"],
        json!([{"type": "IPAddress", "value": "203.0.113.7"}])
    );
    assert_eq!(gw.status["conditions"][0]["observedGeneration"], 3);

    // The same configuration again: nothing to write.
    stores_tx.send_replace(Some(store(CONFIG)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.status_writes().len(), 3);

    // The leader stops: the other takes over once the Lease expires (1 s here).
    let stopped = Instant::now();
    replicas.remove(leader);
    until("takeover", || leading(&replicas) == [true]).await;
    assert!(
        stopped.elapsed() >= Duration::from_millis(900),
        "took over a live Lease"
    );
    // The new leader finds the status already there and writes nothing...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(applied(&replicas[0]), 0);
    // ...until something changes.
    stores_tx.send_replace(Some(store(
        &CONFIG.replace("generation: 3", "generation: 4"),
    )));
    until("new leader writes", || applied(&replicas[0]) == 1).await;
    assert_eq!(api.status_writes().len(), 4);
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "istio-system",
            "sluice-status-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

/// An Ingress this gateway serves gets the gateway Service's load balancer in
/// `status.loadBalancer`, as Istio writes its ingress status; another class's Ingress does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_ingresses_get_the_gateway_services_address() {
    let api = ApiServer::start().await;
    for o in [
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "default"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "theirs", "namespace": "default"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw", "namespace": "istio-system"},
               "spec": {"selector": {"istio": "ingressgateway"}, "ports": [{"port": 80}]},
               "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}}}),
    ] {
        api.apply(o);
    }
    let ingress = |name: &str, class: &str| {
        format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: default, annotations: {{kubernetes.io/ingress.class: {class}}}}}\nspec:\n  rules: [{{http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}}}]\n---\n")
    };
    let config = ingress("shop", "istio") + &ingress("theirs", "nginx");
    let (_stores_tx, stores) = watch::channel(Some(store(&config)));
    let election = elect(api.client(), lease("sluice-a"));
    let _writer = status::spawn(
        api.client(),
        GatewayIdentity::default(),
        election.leading.clone(),
        stores,
    );
    until("ingress status written", || {
        api.status_writes().iter().any(|w| w.kind == "Ingress")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writes = api.status_writes();
    let ingresses: Vec<_> = writes.iter().filter(|w| w.kind == "Ingress").collect();
    assert_eq!(ingresses.len(), 1, "{writes:?}");
    assert_eq!(ingresses[0].name, "shop");
    assert_eq!(
        ingresses[0].status,
        json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}})
    );
}

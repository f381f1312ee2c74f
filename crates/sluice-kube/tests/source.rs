//! The Kubernetes source against the API server stand-in: first sync, changes, deletes, a
//! watch that expires (410 Gone → list again), an outage, resources that are not served.
mod common;
use common::apiserver::ApiServer;
use common::until;
use serde_json::json;
use sluice_config::Kind;
use sluice_kube::{Kubernetes, Options};
use sluice_source::Source;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn vs(name: &str, host: &str) -> serde_json::Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"hosts": [host], "gateways": ["gw"], "http": [{"route": [{"destination": {"host": "demo"}}]}]}})
}

fn hosts(source: &Kubernetes) -> Vec<String> {
    let loaded = source.load().unwrap();
    let mut out: Vec<String> = loaded
        .objects
        .iter()
        .filter_map(|o| o.virtual_service())
        .flat_map(|v| v.hosts.clone())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_then_follows_changes_across_expiry_and_outage() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let api = ApiServer::start().await;
    api.not_served("gateway.networking.k8s.io"); // no Gateway API CRDs in this cluster
    api.apply(vs("a", "a.example"));
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"version": "v1"}},
        "spec": {"containers": [{"name": "c", "image": "secret-image"}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cert", "namespace": "istio-system"}, "data": {"tls.crt": "eA=="}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "other", "namespace": "default"}, "data": {"x": "eA=="}}));

    let source = Arc::new(Kubernetes::new(
        api.client(),
        &Options {
            secret_namespaces: vec!["istio-system".into()],
            backoff: (Duration::from_millis(50), Duration::from_millis(400)),
            ..Default::default()
        },
    ));
    assert!(!source.synced());
    let (tx, mut rx) = mpsc::channel(1);
    source.watch(tx).unwrap();
    until("first sync", || source.synced()).await;
    assert!(rx.recv().await.is_some());
    assert_eq!(hosts(&source), ["a.example"]);
    let loaded = source.load().unwrap();
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let kinds: Vec<_> = loaded.objects.iter().map(|o| (o.kind, o.key())).collect();
    assert!(
        kinds.contains(&(Kind::Gateway, "default/gw".into())),
        "{kinds:?}"
    );
    let loaded = source.load().unwrap();
    let pod = loaded.objects.iter().find(|o| o.kind == Kind::Pod).unwrap();
    assert_eq!(pod.meta.labels["version"], "v1");
    assert_eq!(&*pod.file, "kubernetes:pods/default/p");
    // The metadata projection: the Pod's spec never reached us.
    assert!(!loaded.sources[&pod.file].contains("secret-image"));
    // Secrets: only from the namespaces allowed, and their text is kept out of diagnostics.
    let secrets: Vec<_> = loaded
        .objects
        .iter()
        .filter(|o| o.kind == Kind::Secret)
        .map(|o| o.key())
        .collect();
    assert_eq!(secrets, ["istio-system/cert"]);
    assert!(!loaded.sources.keys().any(|k| k.contains("secrets")));

    // An update and a new object.
    api.apply(vs("a", "a2.example"));
    api.apply(vs("b", "b.example"));
    until("update", || hosts(&source) == ["a2.example", "b.example"]).await;

    // The watch expires (410 Gone) while an object is deleted: the client lists again, and
    // the list no longer has it.
    let lists = api.lists("virtualservices");
    api.expire_watches();
    api.delete("networking.istio.io/v1", "VirtualService", "default", "b");
    until("relist after 410", || api.lists("virtualservices") > lists).await;
    until("delete seen", || hosts(&source) == ["a2.example"]).await;

    // Watches that end normally resume from their resourceVersion without a list.
    let (lists, watches) = (api.lists("virtualservices"), api.watches("virtualservices"));
    api.restart_watches();
    api.apply(vs("c", "c.example"));
    until("change after watch restart", || {
        hosts(&source) == ["a2.example", "c.example"]
    })
    .await;
    until("watch again", || api.watches("virtualservices") > watches).await;
    assert_eq!(
        api.lists("virtualservices"),
        lists,
        "no relist after a clean end of a watch"
    );

    // An outage: the view goes stale and says so; the last objects stay; then it catches up.
    api.set_down(true);
    until("staleness noticed", || source.staleness() > Duration::ZERO).await;
    assert_eq!(hosts(&source), ["a2.example", "c.example"]);
    api.set_down(false);
    api.apply(vs("d", "d.example"));
    until("caught up after the outage", || {
        hosts(&source) == ["a2.example", "c.example", "d.example"]
    })
    .await;
    until("fresh again", || source.staleness() == Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_namespaces_limit_namespaced_objects() {
    let api = ApiServer::start().await;
    api.apply(vs("mine", "mine.example"));
    let mut other = vs("theirs", "theirs.example");
    other["metadata"]["namespace"] = "elsewhere".into();
    api.apply(other);
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere", "labels": {"team": "b"}}}));
    let source = Kubernetes::new(
        api.client(),
        &Options {
            watch_namespaces: vec!["default".into()],
            backoff: (Duration::from_millis(50), Duration::from_millis(400)),
            ..Default::default()
        },
    );
    let (tx, _rx) = mpsc::channel(1);
    source.watch(tx).unwrap();
    until("first sync", || source.synced()).await;
    assert_eq!(hosts(&source), ["mine.example"]);
    // Cluster-scoped objects (Namespaces, for allowedRoutes) are read whatever the list says.
    let loaded = source.load().unwrap();
    assert!(loaded
        .objects
        .iter()
        .any(|o| o.kind == Kind::Namespace && o.name == "elsewhere"));
    // No Secrets namespace given: no Secret watcher at all (never cluster-wide).
    assert_eq!(api.lists("secrets"), 0);
}

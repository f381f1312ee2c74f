//! Scale: 10,000 Services, EndpointSlices and Pods through the API server stand-in into the
//! Kubernetes source and the reload loop. Prints the time to the first snapshot, the memory
//! and CPU the watchers and the compile take, and the time from a change to the new snapshot
//! serving. Not run by default (about a minute in a debug build):
//! `cargo test --release -p sluice-kube --test scale -- --ignored --nocapture`.
mod common;
use common::apiserver::ApiServer;
use serde_json::json;
use sluice_compile::{AnalyzeOptions, GatewayIdentity};
use sluice_kube::{Kubernetes, Options};
use sluice_source::{Pipeline, Reloader, Source};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const N: usize = 10_000;

/// User and system CPU time of this process so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn rss_mb() -> f64 {
    sluice_proxy::rss_bytes().unwrap_or(0) as f64 / 1024.0 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn ten_thousand_services_endpointslices_and_pods() {
    let api = ApiServer::start().await;
    api.not_served("gateway.networking.k8s.io");
    api.apply(json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "default"},
        "spec": {"selector": {"istio": "ingressgateway"},
                 "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}));
    for i in 0..N {
        let ns = format!("ns-{}", i % 100);
        let name = format!("svc-{i}");
        api.apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
        api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-x1"), "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256)], "conditions": {"ready": true},
                           "targetRef": {"kind": "Pod", "name": format!("{name}-pod"), "namespace": ns}}]}));
        api.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-pod"), "namespace": ns,
                         "labels": {"app": name, "version": "v1", "pod-template-hash": "7d9f8c"}},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}));
    }
    // A route to one of them, to see a change serve.
    let route = |host: &str| {
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"hosts": [host], "gateways": ["gw"], "http": [{"route": [{"destination": {"host": "svc-1.ns-1.svc.cluster.local"}}]}]}})
    };
    api.apply(route("a.example"));

    let (rss0, cpu0) = (rss_mb(), cpu());
    let started = Instant::now();
    let source = Arc::new(Kubernetes::new(api.client(), &Options::default()));
    let reloader = Reloader::new(
        source.clone(),
        Pipeline::new(AnalyzeOptions::default(), GatewayIdentity::default()),
        Duration::from_millis(100),
    );
    type Served = Vec<(Instant, Arc<sluice_compile::Snapshot>)>;
    let served: Arc<Mutex<Served>> = Arc::default();
    let sink = served.clone();
    let (tx, rx) = mpsc::channel(1);
    source.watch(tx).unwrap();
    tokio::spawn(reloader.run(rx, move |b| {
        sink.lock()
            .unwrap()
            .push((Instant::now(), b.snapshot.clone()));
        Ok(())
    }));
    let deadline = Instant::now() + Duration::from_secs(600);
    while served.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first = started.elapsed();
    let (rss1, cpu1) = (rss_mb(), cpu());
    println!(
        "first snapshot after {first:?}: {} objects; RSS +{:.0} MiB (now {rss1:.0} MiB); CPU {:?}",
        source.object_count(),
        rss1 - rss0,
        cpu1 - cpu0
    );

    // Changes: the time from the API server's write to the new snapshot in hand.
    for (i, host) in ["b.example", "c.example", "d.example"]
        .into_iter()
        .enumerate()
    {
        let before = served.lock().unwrap().len();
        let t = Instant::now();
        api.apply(route(host));
        loop {
            let serving_at = {
                let s = served.lock().unwrap();
                s.last()
                    .filter(|(_, snap)| {
                        s.len() > before
                            && snap
                                .route_tables
                                .values()
                                .any(|t| t.virtual_hosts.iter().any(|v| v.domain == host))
                    })
                    .map(|(at, _)| *at)
            };
            if let Some(at) = serving_at {
                println!(
                    "change {i}: serving {:?} after the write (debounce 100 ms included)",
                    at - t
                );
                break;
            }
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let t = Instant::now();
    let compile = {
        let loaded = source.load().unwrap();
        let load = t.elapsed();
        let (store, _) = sluice_compile::admit(&loaded, &AnalyzeOptions::default());
        let admit = t.elapsed();
        let (_snapshot, _) = sluice_compile::compile(&store.unwrap(), &GatewayIdentity::default());
        (load, admit, t.elapsed())
    };
    println!(
        "one load (objects already parsed) {:?}; +admit (checks, analysis) {:?}; +compile {:?}",
        compile.0, compile.1, compile.2
    );
    println!(
        "idle RSS now {:.0} MiB, CPU since start {:?}",
        rss_mb(),
        cpu() - cpu0
    );
}

//! A DestinationRule's effective policy per cluster, with Istio's inheritance: a subset's fields
//! replace the top level's whole, a port-level entry replaces all four fields, and `explain`
//! says which level each part came from.
use sluice_compile::policy::cluster::{HashKey, HashTable, Origin};
use sluice_compile::{compile, GatewayIdentity, Snapshot};
use sluice_config::Loader;

const YAML: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: default}
spec:
  hosts: [app.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}, {number: 9000, name: http-admin, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}, {address: 10.0.0.2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app, namespace: default}
spec:
  host: app.default.svc.cluster.local
  trafficPolicy:
    loadBalancer: {consistentHash: {httpCookie: {name: s, ttl: 60s}}}
    connectionPool: {tcp: {maxConnections: 10, connectTimeout: 2s}}
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9000}
      connectionPool: {http: {http2MaxRequests: 5}}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /v1}}]
    route: [{destination: {host: app, subset: v1, port: {number: 8000}}}]
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: app, subset: v2, port: {number: 8000}}}]
  - route: [{destination: {host: app, port: {number: 9000}}}]
"#;

fn snapshot() -> Snapshot {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), YAML);
    let (store, diags) = sluice_compile::check(&l.finish(), &Default::default());
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    compile(&store, &GatewayIdentity::default()).0
}

#[test]
fn subsets_and_ports_inherit_as_istio_does() {
    let s = snapshot();
    let c = |name: &str| s.clusters[name].policy.clone();
    let v1 = c("outbound|8000|v1|app.default.svc.cluster.local");
    let v2 = c("outbound|8000|v2|app.default.svc.cluster.local");
    let admin = c("outbound|9000||app.default.svc.cluster.local");
    // v1 has no policy of its own: the top level, whole.
    assert_eq!(v1.pool.max_connections, 10);
    assert_eq!(
        v1.pool.connect_timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(v1.outlier.as_ref().unwrap().consecutive_5xx, Some(3));
    assert!(matches!(
        v1.hash.as_ref().unwrap().key,
        HashKey::Cookie { .. }
    ));
    assert_eq!(
        v1.hash.as_ref().unwrap().table,
        HashTable::Maglev { table_size: 65537 }
    );
    // v2's connectionPool replaces the top level's whole (its connectTimeout is gone); the rest
    // is inherited.
    assert_eq!(v2.pool.max_connections, 1);
    assert_eq!(v2.pool.connect_timeout, None);
    assert_eq!(
        v2.origins,
        [Origin::TopLevel, Origin::Subset, Origin::TopLevel]
    );
    assert!(v2.outlier.is_some() && v2.hash.is_some());
    // The port-level entry replaces all four fields: no hash, no outlier detection on 9000.
    assert_eq!(admin.pool.max_requests, 5);
    assert_eq!(admin.pool.max_connections, u32::MAX);
    assert!(admin.hash.is_none() && admin.outlier.is_none());
    assert_eq!(admin.origins, [Origin::PortLevel; 3]);
}

#[test]
fn explain_shows_the_effective_policy_and_its_origin() {
    let s = snapshot();
    let e = sluice_compile::explain::explain(
        &s,
        &sluice_compile::explain::Request {
            port: 80,
            host: Some("app.example.com"),
            sni: None,
            path: "/v2",
            method: "GET",
            headers: &[],
        },
    );
    let policy = &e.clusters[0].traffic_policy;
    assert_eq!(
        policy[0],
        "loadBalancer (trafficPolicy): consistentHash by cookie s (set when absent, ttl 60s), maglev, table 65537"
    );
    assert_eq!(
        policy[1],
        "connectionPool (subset trafficPolicy): maxConnections 1, tcp idleTimeout 3600s"
    );
    assert!(
        policy[2].starts_with("outlierDetection (trafficPolicy): consecutive5xxErrors 3,"),
        "{}",
        policy[2]
    );
}

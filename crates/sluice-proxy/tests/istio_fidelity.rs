//! Istio's rules about what a gateway instance sees and where it listens, over real sockets:
//! its own Service translates Gateway ports to target ports, and `exportTo` hides objects from
//! it.
mod common;
use common::*;
use sluice_echo::Identity;

/// The gateway's own Service (Istio's `istio-ingressgateway`): Gateway port 80 is Service port
/// 80, and the pods listen on its targetPort 8080.
const OWN_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  type: LoadBalancer
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
---
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_service_translates_port_80_to_8080() {
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + OWN_SERVICE
        + &app_routes("    - route: [{destination: {host: app}}]");
    let snap = snapshot(&yaml, &[]);
    let listener = snap.listener_for_service_port(80).unwrap();
    assert_eq!(listener.name, "0.0.0.0_8080");
    assert_eq!(listener.route_table(None), Some("http.8080"));
    // Nothing is bound for port 80 itself: the instance listens where the Service sends.
    assert!(snap.listeners.contains_key(&8080) && !snap.listeners.contains_key(&80));
    let gw = gateway(snap.clone(), test_options());
    let client = TestClient::http1(gw.local_addr(8080).unwrap());
    // The Host's port is the Service port, as clients of the load balancer send it.
    assert_eq!(client.get("app.example:80", "/").await.who(), "pod");
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 80,
            host: Some("app.example"),
            sni: None,
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    assert_eq!(e.listener.as_deref(), Some("0.0.0.0_8080"));
    assert_eq!(e.virtual_host.as_deref(), Some("*:80"));
}

/// A VirtualService exported only to its own namespace is invisible to a gateway running in
/// istio-system (Istio's rule): its host gets 404, while an exported one routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_hides_a_virtual_service_from_the_gateway() {
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*/*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: default}
spec:
  hosts: [private.example]
  gateways: [istio-system/gw]
  exportTo: ["."]
  http: [{route: [{destination: {host: app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: public, namespace: default}
spec:
  hosts: [public.example]
  gateways: [istio-system/gw]
  exportTo: [".", istio-system]
  http: [{route: [{destination: {host: app}}]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: hidden, namespace: default}
spec:
  hosts: [hidden.default.svc.cluster.local]
  exportTo: ["."]
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-hidden, namespace: default}
spec:
  hosts: [hidden.example]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: hidden}}]}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(client.get("public.example", "/").await.who(), "pod");
    assert_eq!(client.get("private.example", "/").await.who(), "404");
    // A ServiceEntry the gateway cannot see is an unknown host: 503 (NC), as in Istio.
    assert_eq!(client.get("hidden.example", "/").await.who(), "503");
}

/// The same VirtualService in two files (as in Istio's samples directory): the later file's
/// definition replaces the earlier one, as `kubectl apply` of the files in order would, with a
/// warning naming both places; the configuration is served, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_object_is_replaced_by_the_later_file() {
    let pods = backends(vec![
        Identity::new("app", "v1", "pod-v1"),
        Identity::new("app", "v2", "pod-v2"),
    ])
    .await;
    let to = |version: &str| format!("    - route: [{{destination: {{host: app-{version}}}}}]",);
    let first = service_entry("app-v1", &[(&pods[0], 1)])
        + &service_entry("app-v2", &[(&pods[1], 1)])
        + &app_routes(&to("v1"));
    let second = app_routes(&to("v2"));
    let mut l = sluice_config::Loader::new();
    l.add_text("samples/a.yaml".into(), &first);
    l.add_text("samples/b.yaml".into(), &second);
    let loaded = l.finish();
    let (store, diags) = sluice_compile::admit(&loaded, &Default::default());
    let store = store.expect("a duplicate does not refuse the configuration");
    let dup = diags
        .iter()
        .find(|d| d.code == sluice_config::diag::codes::DUPLICATE_OBJECT)
        .expect("a warning about the duplicate");
    assert_eq!(dup.severity, sluice_config::Severity::Warning);
    let text = format!("{} {}", dup.message, dup.help.clone().unwrap_or_default());
    assert!(
        text.contains("samples/a.yaml") && text.contains("samples/b.yaml"),
        "{text}"
    );
    let snap = std::sync::Arc::new(sluice_compile::compile(&store, &Default::default()).0);
    let gw = gateway(snap, test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    for _ in 0..5 {
        assert_eq!(client.get("any.example", "/").await.who(), "pod-v2");
    }
}

//! Kubernetes Ingress over real sockets, served as Istio serves it: path types as Istio reads
//! them, Istio's order across Ingresses, TLS from `secretName`, and one route written three
//! ways (Ingress, VirtualService, HTTPRoute) giving the same traffic.
mod common;
use common::pki::*;
use common::*;
use sluice_echo::{Echo, Identity};

async fn pods(names: &[&str]) -> Vec<Echo> {
    backends(names.iter().map(|n| Identity::new(n, "v1", n)).collect()).await
}

/// A Service `name` in `default` on port 8000 (named `http`) with one pod.
fn service(name: &str, pod: &Echo) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports: [{{name: http, port: 8000}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [127.0.0.1]}}]\n---\n",
        pod.addr.port()
    )
}

fn ingress(name: &str, stamp: &str, spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: default, creationTimestamp: \"{stamp}\", annotations: {{kubernetes.io/ingress.class: istio}}}}\nspec:\n{spec}---\n")
}

fn path(p: &str, ty: &str, svc: &str) -> String {
    format!("      - {{path: \"{p}\", pathType: {ty}, backend: {{service: {{name: {svc}, port: {{number: 8000}}}}}}}}\n")
}

/// Exact, Prefix (whole elements) and ImplementationSpecific (Istio's `/*` and `.*` prefixes,
/// else exact) over two Ingresses for one host, in Istio's order: longer paths first, exact
/// before prefix, match-all last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_types_and_order_as_istio_reads_them() {
    let names = ["exact", "prefix", "star", "plain", "all", "other"];
    let p = pods(&names).await;
    let mut yaml: String = names
        .iter()
        .zip(&p)
        .map(|(n, pod)| service(n, pod))
        .collect();
    yaml += &ingress(
        "first",
        "2026-01-01T00:00:00Z",
        &format!(
            "  rules:\n  - host: shop.example\n    http:\n      paths:\n{}{}{}",
            path("/", "Prefix", "all"),
            path("/api", "Prefix", "prefix"),
            path("/api/v1", "Exact", "exact"),
        ),
    );
    yaml += &ingress(
        "second",
        "2026-02-01T00:00:00Z",
        &format!(
            "  rules:\n  - host: shop.example\n    http:\n      paths:\n{}{}\n  - http:\n      paths:\n{}",
            path("/static/*", "ImplementationSpecific", "star").trim_end(),
            &format!("\n{}", path("/plain", "ImplementationSpecific", "plain")).trim_end(),
            path("/", "Prefix", "other"),
        ),
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    for (host, p, want) in [
        ("shop.example", "/api/v1", "exact"),
        ("shop.example", "/api/v1/x", "prefix"),
        ("shop.example", "/api", "prefix"),
        ("shop.example", "/api/", "prefix"),
        ("shop.example", "/apix", "all"),
        ("shop.example", "/static/app.js", "star"),
        // Istio strips `/*` whole: the rest is a plain string prefix.
        ("shop.example", "/staticx", "star"),
        ("shop.example", "/plain", "plain"),
        ("shop.example", "/plain/x", "all"),
        ("shop.example", "/", "all"),
        // A rule without host serves every other host.
        ("elsewhere.example", "/api/v1", "other"),
    ] {
        assert_eq!(c.get(host, p).await.who(), want, "{host}{p}");
    }
}

/// `tls[].secretName` (in the gateway's namespace, as Istio reads it) serves its hosts on 443;
/// port 80 keeps serving them in plaintext (no redirect). An Ingress of another class is not
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_secret_name_and_classes() {
    let p = pods(&["app", "nginx"]).await;
    let ca = Ca::new("ingress root");
    let leaf = ca.leaf(&["secure.example"]);
    let yaml = service("app", &p[0])
        + &service("nginx", &p[1])
        + &tls_secret("secure-cert", &leaf.cert_pem, &leaf.key_pem, None)
        + &ingress(
            "secure",
            "2026-01-01T00:00:00Z",
            &format!(
                "  tls: [{{hosts: [secure.example], secretName: secure-cert}}]\n  rules:\n  - host: secure.example\n    http:\n      paths:\n{}",
                path("/", "Prefix", "app")
            ),
        )
        + &ingress(
            "theirs",
            "2026-01-01T00:00:00Z",
            &format!(
                "  rules:\n  - host: nginx.example\n    http:\n      paths:\n{}",
                path("/", "Prefix", "nginx")
            ),
        )
        .replace("kubernetes.io/ingress.class: istio", "kubernetes.io/ingress.class: nginx");
    let snap = snapshot(&yaml, &[]);
    let names: Vec<&str> = match &snap.listener_for_service_port(443).unwrap().protocol {
        sluice_compile::snapshot::ListenerProtocol::Tls { servers } => {
            servers.iter().map(|s| s.name.as_str()).collect()
        }
        other => panic!("{other:?}"),
    };
    // Istio's names, as `istioctl proxy-config` shows them.
    assert_eq!(
        names,
        ["https.443.https-443-ingress-secure-default-0.secure-istio-autogenerated-k8s-ingress-default.istio-system"]
    );
    let gw = gateway(snap, test_options());
    let tls = tls_connect(
        gw.local_addr(443).unwrap(),
        "secure.example",
        client_config(&ca, None, false, false),
    )
    .await
    .unwrap();
    assert_eq!(tls_get(tls, "secure.example").await.unwrap().who(), "app");
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(c.get("secure.example", "/").await.who(), "app");
    assert_eq!(
        c.get("nginx.example", "/").await.who(),
        "404",
        "class nginx is not ours"
    );
}

/// One route written three ways on one gateway: an Ingress, a VirtualService and an HTTPRoute
/// for three hosts with the same paths to the same Services give the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_route_three_ways() {
    let p = pods(&["users", "web"]).await;
    let mut yaml = service("users", &p[0]) + &service("web", &p[1]);
    yaml += &ingress(
        "shop",
        "2026-01-01T00:00:00Z",
        &format!(
            "  rules:\n  - host: ingress.example\n    http:\n      paths:\n{}{}",
            path("/users", "Prefix", "users"),
            path("/", "Prefix", "web")
        ),
    );
    yaml += r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [istio.example]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [istio.example]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {exact: /users}}, {uri: {prefix: /users/}}]
    route: [{destination: {host: users, port: {number: 8000}}}]
  - route: [{destination: {host: web, port: {number: 8000}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: kube, namespace: default}
spec:
  gatewayClassName: sluice
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: gateway-api.example}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: kube}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /users}}]
    backendRefs: [{name: users, port: 8000}]
  - backendRefs: [{name: web, port: 8000}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    for path in ["/users", "/users/7", "/usersx", "/", "/cart"] {
        let answers: Vec<String> = futures_answers(&c, path).await;
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{path}: {answers:?}"
        );
    }
    assert_eq!(c.get("ingress.example", "/users/7").await.who(), "users");
    assert_eq!(c.get("ingress.example", "/usersx").await.who(), "web");
}

async fn futures_answers(c: &TestClient, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for host in ["ingress.example", "istio.example", "gateway-api.example"] {
        out.push(c.get(host, path).await.who());
    }
    out
}

/// Istio's "Kubernetes Ingress" task as it is written: an IngressClass with Istio's controller,
/// an Ingress of class `istio` for httpbin.example.com with a `/status` Prefix path; `/status/200`
/// reaches httpbin, `/headers` gets 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_kubernetes_ingress_task() {
    let p = pods(&["httpbin"]).await;
    let yaml = service("httpbin", &p[0])
        + r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: istio
spec:
  controller: istio.io/ingress-controller
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress
spec:
  ingressClassName: istio
  rules:
  - host: httpbin.example.com
    http:
      paths:
      - path: /status
        pathType: Prefix
        backend:
          service:
            name: httpbin
            port:
              number: 8000
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(
        c.get("httpbin.example.com", "/status/200").await.who(),
        "httpbin"
    );
    assert_eq!(c.get("httpbin.example.com", "/headers").await.who(), "404");
    // An IngressClass of another controller does not make its Ingresses ours.
    let other = yaml.replace("istio.io/ingress-controller", "k8s.io/ingress-nginx");
    let gw = gateway(snapshot(&other, &[]), test_options());
    assert!(gw.local_addr(80).is_none(), "nothing to serve");
}

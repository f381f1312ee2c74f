//! The Kubernetes Gateway API over real sockets, written from the spec and the intent of its
//! conformance tests: backends are echo pods behind Services and EndpointSlices, the way a
//! cluster gives them.
mod common;
use common::pki::*;
use common::*;
use sluice_echo::{Echo, Identity};

/// A Service `name` in `ns` on port 8000 whose EndpointSlice holds the given pods.
fn k8s_service(name: &str, ns: &str, pods: &[&Echo]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  ports: [{{name: http, port: 8000}}]\n---\n"
    );
    for (i, p) in pods.iter().enumerate() {
        y += &format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-{i}, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\nports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [127.0.0.1]}}]\n---\n",
            p.addr.port()
        );
    }
    y
}

/// A Gateway `gw` (class sluice) in `default` with one HTTP listener on port 80.
const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
"#;

fn http_route(name: &str, body: &str) -> String {
    format!("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: gw}}]\n{body}---\n")
}

async fn pods(names: &[&str]) -> Vec<Echo> {
    backends(names.iter().map(|n| Identity::new(n, "v1", n)).collect()).await
}

fn serve(yaml: &str) -> (sluice_proxy::Gateway, TestClient) {
    let gw = gateway(snapshot(yaml, &[]), test_options());
    let client = TestClient::http1(gw.local_addr(80).unwrap());
    (gw, client)
}

/// The seed's 90/10 split written as a Gateway and HTTPRoutes (examples/gateway-api), over
/// the demo pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_splits_90_10_by_backend_weights() {
    let pods = demo_pods().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway-api");
    let mut yaml = String::new();
    for f in ["gateway.yaml", "services.yaml"] {
        yaml += &std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
        yaml += "\n---\n";
    }
    for (i, p) in pods.iter().enumerate() {
        yaml = yaml.replace(&format!("{}", 18001 + i), &p.addr.port().to_string());
    }
    let (_gw, client) = serve(&yaml);
    let counts = tally(&client, "shop.example", "/users/7", 1000).await;
    let v3 = counts.get("demo-v3-a").copied().unwrap_or(0);
    // Binomial(1000, 0.1): 6 standard deviations is ±57.
    assert!((43..=157).contains(&v3), "{counts:?}");
    assert_eq!(counts.get("404"), None, "{counts:?}");
    let tasks = tally(&client, "shop.example", "/tasks", 60).await;
    assert_eq!(tasks.len(), 3, "/tasks reaches every pod: {tasks:?}");
    assert_eq!(client.get("shop.example", "/other").await.who(), "404");
}

/// Precedence across rules of several routes (conformance `HTTPRoutePathMatchOrder`): Exact
/// beats every prefix, longer prefixes beat shorter ones, then methods, headers and queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_specific_match_wins_across_routes() {
    let p = pods(&["v1", "v2", "v3", "method", "header", "query"]).await;
    let mut yaml = GATEWAY.to_string();
    for (i, name) in ["v1", "v2", "v3", "method", "header", "query"]
        .iter()
        .enumerate()
    {
        yaml += &k8s_service(name, "default", &[&p[i]]);
    }
    let to = |svc: &str| format!("    backendRefs: [{{name: {svc}, port: 8000}}]\n");
    yaml += &http_route(
        "first",
        &format!(
            "  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /match/}}}}]\n{}  - matches: [{{path: {{type: Exact, value: /match/exact}}}}]\n{}  - matches: [{{path: {{type: PathPrefix, value: /match/prefix/one}}}}]\n{}",
            to("v3"),
            to("v2"),
            to("v2")
        ),
    );
    yaml += &http_route(
        "second",
        &format!(
            "  rules:\n  - matches: [{{path: {{type: Exact, value: /match/exact/one}}}}]\n{}  - matches: [{{path: {{type: PathPrefix, value: /match/prefix/}}}}]\n{}  - matches: [{{path: {{type: Exact, value: /match}}}}]\n{}  - matches: [{{path: {{type: PathPrefix, value: /api}}, method: POST}}]\n{}  - matches: [{{path: {{type: PathPrefix, value: /api}}, headers: [{{name: X-Version, value: two}}]}}]\n{}  - matches: [{{path: {{type: PathPrefix, value: /api}}, queryParams: [{{name: debug, value: \"1\"}}]}}]\n{}",
            to("v3"),
            to("v1"),
            to("v1"),
            to("method"),
            to("header"),
            to("query")
        ),
    );
    let (_gw, c) = serve(&yaml);
    for (path, want) in [
        ("/match/exact/one", "v3"),
        ("/match/exact", "v2"),
        ("/match", "v1"),
        ("/match/prefix/one/any", "v2"),
        ("/match/prefix/any", "v1"),
        ("/match/any", "v3"),
        // Element-wise prefixes: /match/prefixes is not under /match/prefix/.
        ("/match/prefixes", "v3"),
        ("/apix", "404"),
    ] {
        assert_eq!(c.get("h", path).await.who(), want, "{path}");
    }
    // /api with nothing else matches no rule: each needs a method, header or query.
    assert_eq!(c.get("h", "/api").await.who(), "404");
    assert_eq!(c.get("h", "/api/x?debug=1").await.who(), "query");
    let r = c
        .send(
            "GET",
            "h",
            "/api/x?debug=1",
            &[("x-version", "two")],
            Default::default(),
        )
        .await;
    assert_eq!(r.who(), "header", "more header matches beat query matches");
    let r = c
        .send(
            "POST",
            "h",
            "/api/x?debug=1",
            &[("x-version", "two")],
            Default::default(),
        )
        .await;
    assert_eq!(
        r.who(),
        "method",
        "a method match beats header and query matches"
    );
}

/// Filters: header modifiers both ways, URLRewrite (ReplacePrefixMatch, hostname), redirects
/// with the spec's port and scheme defaults, and a backend that cannot be resolved answering
/// 500 for its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_act_as_the_spec_says() {
    let p = pods(&["app"]).await;
    let yaml = GATEWAY.to_string()
        + &k8s_service("app", "default", &[&p[0]])
        + &http_route(
            "filters",
            r#"  rules:
  - matches: [{path: {value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: set}]
        add: [{name: X-Add, value: added}]
        remove: [x-remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Response, value: yes}]
    backendRefs: [{name: app, port: 8000}]
  - matches: [{path: {value: /strip-prefix}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /}
    backendRefs: [{name: app, port: 8000}]
  - matches: [{path: {value: /full}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}
    backendRefs: [{name: app, port: 8000}]
  - matches: [{path: {value: /redirect-https}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https}
  - matches: [{path: {value: /redirect-port}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {port: 8080, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {value: /half-missing}}]
    backendRefs:
    - {name: app, port: 8000}
    - {name: no-such-service, port: 8000}
  - matches: [{path: {value: /no-backends}}]
"#,
        );
    let (_gw, c) = serve(&yaml);
    let r = c
        .send(
            "GET",
            "h",
            "/headers",
            &[("x-remove", "x"), ("x-add", "first")],
            Default::default(),
        )
        .await;
    let seen = r.json();
    assert_eq!(seen["headers"]["x-set"], "set");
    assert!(seen["headers"]["x-remove"].is_null());
    assert_eq!(r.headers["x-response"], "yes");
    let seen = c.get("h", "/strip-prefix/three?q=1").await.json();
    assert_eq!(seen["path"], "/three?q=1");
    assert_eq!(seen["host"], "rewritten.example");
    assert_eq!(c.get("h", "/strip-prefix").await.json()["path"], "/");
    assert_eq!(c.get("h", "/full/one/two").await.json()["path"], "/one");
    let r = c.get("example.org", "/redirect-https/x").await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers["location"],
        "https://example.org/redirect-https/x"
    );
    let r = c.get("example.org", "/redirect-port/a").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "http://example.org:8080/new/a");
    let counts = tally(&c, "h", "/half-missing", 400).await;
    let errors = counts.get("500").copied().unwrap_or(0);
    // Binomial(400, 0.5): 6 standard deviations is ±60.
    assert!((140..=260).contains(&errors), "{counts:?}");
    assert_eq!(c.get("h", "/no-backends").await.who(), "500");
}

/// Attachment: routes in another namespace need `allowedRoutes` (Same by default), a
/// sectionName picks one listener, hostnames intersect the listener's, and Istio's objects
/// share the port with the Gateway API's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_attach_as_listeners_allow() {
    let p = pods(&["same", "other", "istio"]).await;
    let yaml = k8s_service("same", "default", &[&p[0]])
        + &k8s_service("other", "team", &[&p[1]])
        + &service_entry("istio", &[(&p[2], 1)])
        + r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: istio
  listeners:
  - {name: same-only, port: 80, protocol: HTTP, hostname: same.example}
  - name: from-labelled
    port: 80
    protocol: HTTP
    hostname: "*.team.example"
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {shared-gateway: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team, labels: {shared-gateway: "true"}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: same, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: same-only}]
  rules: [{backendRefs: [{name: same, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other, namespace: team}
spec:
  parentRefs: [{name: gw, namespace: default}]
  hostnames: [api.team.example, not-on-this-gateway.example]
  rules: [{backendRefs: [{name: other, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: not-allowed, namespace: team}
spec:
  parentRefs: [{name: gw, namespace: default, sectionName: same-only}]
  hostnames: [same.example]
  rules:
  - matches: [{path: {value: /not-allowed}}]
    backendRefs: [{name: other, port: 8000}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["istio.example"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: istio, namespace: default}
spec:
  hosts: [istio.example]
  gateways: [istio-system/istio-gw]
  http: [{route: [{destination: {host: istio}}]}]
"#;
    let snap = snapshot(&yaml, &[]);
    let gw = gateway(snap.clone(), test_options());
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(c.get("same.example", "/").await.who(), "same");
    assert_eq!(c.get("api.team.example", "/").await.who(), "other");
    assert_eq!(c.get("istio.example", "/").await.who(), "istio");
    // A hostname outside every listener, and a namespace the listener does not allow.
    assert_eq!(c.get("not-on-this-gateway.example", "/").await.who(), "404");
    assert_eq!(c.get("same.example", "/not-allowed").await.who(), "same");
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 80,
            host: Some("api.team.example"),
            sni: None,
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    let route = e.route.unwrap();
    assert_eq!(
        (route.kind, route.virtual_service.as_str()),
        ("HTTPRoute", "team/other")
    );
}

/// An HTTPS listener takes its certificate from a Secret in another namespace only with a
/// ReferenceGrant there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_certificates_and_reference_grants() {
    let p = pods(&["app"]).await;
    let ca = Ca::new("gateway root");
    let leaf = ca.leaf(&["secure.example"]);
    let cert_secret = tls_secret("secure-cert", &leaf.cert_pem, &leaf.key_pem, None)
        .replace("namespace: istio-system", "namespace: certs");
    let gateway_yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example
    tls:
      certificateRefs: [{name: secure-cert, namespace: certs}]
---
"#;
    let grant = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-read-certs, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}]
  to: [{group: "", kind: Secret}]
---
"#;
    let base = k8s_service("app", "default", &[&p[0]])
        + &cert_secret
        + gateway_yaml
        + &http_route(
            "app",
            "  rules: [{backendRefs: [{name: app, port: 8000}]}]\n",
        );
    // Without the grant the listener has no certificate: nothing listens on 443.
    assert!(snapshot(&base, &[])
        .listener_for_service_port(443)
        .is_none());
    let gw = gateway(snapshot(&(base + grant), &[]), test_options());
    let tls = tls_connect(
        gw.local_addr(443).unwrap(),
        "secure.example",
        client_config(&ca, None, false, false),
    )
    .await
    .unwrap();
    assert_eq!(tls_get(tls, "secure.example").await.unwrap().who(), "app");
}

/// `timeouts.request` bounds the whole request: 504 from a slow backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_answers_504() {
    let p = pods(&["slow"]).await;
    let yaml = GATEWAY.to_string()
        + &k8s_service("slow", "default", &[&p[0]])
        + &http_route(
            "slow",
            "  rules:\n  - backendRefs: [{name: slow, port: 8000}]\n    timeouts: {request: 200ms}\n",
        );
    let (_gw, c) = serve(&yaml);
    assert_eq!(c.get("h", "/?sleep_ms=1000").await.status, 504);
    assert_eq!(c.get("h", "/").await.who(), "slow");
}

/// Review findings, each pinned: a route without a ReferenceGrant never borrows the working
/// cluster another route made for the same Service, and precedence spans every Gateway on a
/// port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_per_route_and_precedence_spans_gateways() {
    let p = pods(&["team-app", "exact"]).await;
    let yaml = k8s_service("app", "team", &[&p[0]])
        + &k8s_service("exact", "default", &[&p[1]])
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["istio.example"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: to-team, namespace: default}
spec:
  hosts: [istio.example]
  gateways: [istio-system/istio-gw]
  http: [{route: [{destination: {host: app.team.svc.cluster.local, port: {number: 8000}}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: first, namespace: default}
spec:
  gatewayClassName: sluice
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: gw.example}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: second, namespace: default}
spec:
  gatewayClassName: sluice
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: gw.example}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catch-all, namespace: default}
spec:
  parentRefs: [{name: first}]
  rules: [{backendRefs: [{name: app, namespace: team, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact, namespace: default}
spec:
  parentRefs: [{name: second}]
  rules: [{matches: [{path: {type: Exact, value: /x}}], backendRefs: [{name: exact, port: 8000}]}]
"#;
    let (_gw, c) = serve(&yaml);
    assert_eq!(c.get("istio.example", "/").await.who(), "team-app");
    // No ReferenceGrant in `team`: 500, although the VirtualService reaches the same Service.
    assert_eq!(c.get("gw.example", "/").await.who(), "500");
    // The Exact match of the second Gateway's route beats the first's catch-all.
    assert_eq!(c.get("gw.example", "/x").await.who(), "exact");
}

/// The CORS filter: preflights answered at the gateway for allowed origins (including a
/// wildcard host), `maxAge` 5 unless set, other origins get no CORS headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cors_filter_answers_preflights() {
    let p = pods(&["app"]).await;
    let yaml = GATEWAY.to_string()
        + &k8s_service("app", "default", &[&p[0]])
        + &http_route(
            "cors",
            r#"  rules:
  - filters:
    - type: CORS
      cors:
        allowOrigins: ["https://shop.example", "https://*.partner.example"]
        allowMethods: [GET, POST]
        allowHeaders: [x-token]
        allowCredentials: true
    backendRefs: [{name: app, port: 8000}]
"#,
        );
    let (_gw, c) = serve(&yaml);
    let preflight = |origin: &'static str| {
        let c = c.clone();
        async move {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ];
            c.send("OPTIONS", "h", "/", &headers, Default::default())
                .await
        }
    };
    let h = |r: &Reply, k: &str| r.headers.get(k).map(|v| v.to_str().unwrap().to_string());
    let r = preflight("https://a.partner.example").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://a.partner.example")
    );
    assert_eq!(
        h(&r, "access-control-allow-methods").as_deref(),
        Some("GET,POST")
    );
    assert_eq!(h(&r, "access-control-max-age").as_deref(), Some("5"));
    assert_eq!(
        h(&r, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let r = preflight("https://evil.example").await;
    assert_eq!(h(&r, "access-control-allow-origin"), None);
    assert_eq!(p[0].hits(), 0, "preflights are answered at the gateway");
    let r = c
        .send(
            "GET",
            "h",
            "/",
            &[("origin", "https://shop.example")],
            Default::default(),
        )
        .await;
    assert_eq!(r.who(), "app");
    assert_eq!(
        h(&r, "access-control-allow-origin").as_deref(),
        Some("https://shop.example")
    );
}

/// A TLS listener in Passthrough mode routes TLSRoutes by SNI (the backend's own certificate
/// reaches the client), and a TCP listener sends the bytes by its oldest TCPRoute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_passthrough_and_tcp_routes() {
    let ca = Ca::new("backend root");
    let secure = tls_backend(&ca, &["db.example.com"], None).await;
    let p = pods(&["plain"]).await;
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: db, namespace: default}}\nspec:\n  ports: [{{name: tls, port: 7000}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: db-1, namespace: default, labels: {{kubernetes.io/service-name: db}}}}\naddressType: IPv4\nports: [{{name: tls, port: {}}}]\nendpoints: [{{addresses: [127.0.0.1]}}]\n---\n",
        secure.port()
    ) + &k8s_service("plain", "default", &[&p[0]])
        + r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: l4, namespace: default}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: tls, port: 443, protocol: TLS, hostname: "*.example.com", tls: {mode: Passthrough}}
  - {name: tcp, port: 9000, protocol: TCP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: db, namespace: default}
spec:
  parentRefs: [{name: l4, sectionName: tls}]
  hostnames: [db.example.com]
  rules: [{backendRefs: [{name: db, port: 7000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: plain, namespace: default}
spec:
  parentRefs: [{name: l4, sectionName: tcp}]
  rules: [{backendRefs: [{name: plain, port: 8000}]}]
"#;
    let snap = snapshot(&yaml, &[]);
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 443,
            host: None,
            sni: Some("db.example.com"),
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    let route = e.route.unwrap();
    assert_eq!(
        (route.kind, route.virtual_service.as_str()),
        ("TLSRoute", "default/db")
    );
    let gw = gateway(snap, test_options());
    let tls = tls_connect(
        gw.local_addr(443).unwrap(),
        "db.example.com",
        client_config(&ca, None, false, false),
    )
    .await
    .expect("the backend's certificate, passed through");
    assert_eq!(
        &tls_get(tls, "db.example.com").await.unwrap().body[..],
        b"secure"
    );
    let other = tls_connect(
        gw.local_addr(443).unwrap(),
        "web.example.com",
        client_config(&ca, None, false, false),
    );
    assert!(other.await.is_err(), "no TLSRoute takes this SNI");
    // HTTP over the TCP route reaches the pod.
    let c = TestClient::http1(gw.local_addr(9000).unwrap());
    assert_eq!(c.get("anything", "/").await.who(), "plain");
}

/// GRPCRoute (conformance `GRPCExactMethodMatching`, `GRPCRouteHeaderMatching`): a method match
/// is a match on `/<service>/<method>`, exact or by regex, with header matches; the backend is
/// spoken to in HTTP/2 although its Service port says nothing of gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_routes_match_services_and_methods() {
    let names = ["exact", "service", "method", "regex", "header", "rest"];
    let p = pods(&names).await;
    let mut yaml = GATEWAY.to_string();
    for (i, name) in names.iter().enumerate() {
        yaml += &k8s_service(name, "default", &[&p[i]]);
    }
    let to = |svc: &str| format!("    backendRefs: [{{name: {svc}, port: 8000}}]\n");
    yaml += &format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: greeter, namespace: default}}\nspec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [grpc.example.com]\n  rules:\n\
         \x20 - matches: [{{method: {{service: helloworld.Greeter, method: SayHello}}}}]\n{}\
         \x20 - matches: [{{method: {{service: helloworld.Greeter}}}}]\n{}\
         \x20 - matches: [{{method: {{method: Check}}}}]\n{}\
         \x20 - matches: [{{method: {{type: RegularExpression, service: \"grpc\\\\.health\\\\..*\", method: \"Wat.*\"}}}}]\n{}\
         \x20 - matches: [{{headers: [{{name: x-tenant, value: blue}}]}}]\n{}\
         \x20 - {}",
        to("exact"),
        to("service"),
        to("method"),
        to("regex"),
        to("header"),
        to("rest").trim_start()
    );
    let (gw, _) = serve(&yaml);
    // gRPC clients speak HTTP/2 with prior knowledge; the host is the :authority.
    let stream = tokio::net::TcpStream::connect(gw.local_addr(80).unwrap())
        .await
        .unwrap();
    let mut send = http2_sender(stream).await;
    let mut call = async |host: &str, path: &str, headers: &[(&str, &str)]| {
        let mut req = hyper::Request::post(format!("http://{host}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = send
            .send_request(
                req.body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let grpc_status = resp.headers().get("grpc-status").cloned();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        match grpc_status {
            // The gateway's own answer: gRPC status 12 (UNIMPLEMENTED) is its 404.
            Some(s) => (
                format!("grpc-status {}", s.to_str().unwrap()),
                String::new(),
            ),
            None => {
                let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
                (
                    seen["pod"].as_str().unwrap().to_string(),
                    seen["proto"].as_str().unwrap().to_string(),
                )
            }
        }
    };
    for (path, headers, want) in [
        ("/helloworld.Greeter/SayHello", &[][..], "exact"),
        ("/helloworld.Greeter/SayGoodbye", &[][..], "service"),
        ("/grpc.health.v1.Health/Check", &[][..], "method"),
        ("/grpc.health.v1.Health/Watch", &[][..], "regex"),
        ("/other.Service/Any", &[("x-tenant", "blue")][..], "header"),
        ("/other.Service/Any", &[][..], "rest"),
    ] {
        let (who, proto) = call("grpc.example.com", path, headers).await;
        assert_eq!(who, want, "{path}");
        assert_eq!(proto, "HTTP/2.0", "{path}: upstream in HTTP/2");
    }
    // Another host is not the GRPCRoute's.
    let (who, _) = call("other.example.com", "/helloworld.Greeter/SayHello", &[]).await;
    assert_eq!(who, "grpc-status 12");
}

/// A TLS listener that terminates (mode Terminate, the default) routes TLSRoutes by SNI and
/// carries the decrypted bytes to the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_terminate_listener_routes_tls_routes_by_sni() {
    let p = pods(&["alpha", "beta"]).await;
    let ca = Ca::new("gateway root");
    let leaf = ca.leaf(&["*.example.com"]);
    let secret = tls_secret("wildcard", &leaf.cert_pem, &leaf.key_pem, None)
        .replace("namespace: istio-system", "namespace: default");
    let tls_route = |name: &str, host: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{{name: term}}]\n  hostnames: [{host}]\n  rules: [{{backendRefs: [{{name: {name}, port: 8000}}]}}]\n---\n")
    };
    let yaml = k8s_service("alpha", "default", &[&p[0]])
        + &k8s_service("beta", "default", &[&p[1]])
        + &secret
        + r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: term, namespace: default}
spec:
  gatewayClassName: sluice
  listeners:
  - name: tls
    port: 443
    protocol: TLS
    hostname: "*.example.com"
    tls: {mode: Terminate, certificateRefs: [{name: wildcard}]}
---
"# + &tls_route("alpha", "alpha.example.com")
        + &tls_route("beta", "beta.example.com");
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    for (sni, want) in [("alpha.example.com", "alpha"), ("beta.example.com", "beta")] {
        let tls = tls_connect(
            gw.local_addr(443).unwrap(),
            sni,
            client_config(&ca, None, false, false),
        )
        .await
        .expect("terminated by the gateway's certificate");
        // The backend (plain HTTP) sees the bytes the gateway decrypted.
        assert_eq!(tls_get(tls, sni).await.unwrap().who(), want, "{sni}");
    }
    let other = tls_connect(
        gw.local_addr(443).unwrap(),
        "gamma.example.com",
        client_config(&ca, None, false, false),
    );
    assert!(other.await.is_err(), "no TLSRoute takes this SNI");
}

/// A ConfigMap holding `pem` under `ca.crt`.
fn ca_config_map(name: &str, pem: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\ndata:\n  ca.crt: |\n{}---\n",
        pem.lines().map(|l| format!("    {l}\n")).collect::<String>()
    )
}

/// BackendTLSPolicy: the gateway speaks TLS to the Service with the policy's hostname as SNI
/// and checks the backend's certificate against the ConfigMap's CA; a certificate for another
/// name, or a CA that is not there, gets no request through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_tls_policy_verifies_the_backend() {
    let ca = Ca::new("backend root");
    let backend = tls_backend(&ca, &["secure.internal"], None).await;
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: secure, namespace: default}}\nspec:\n  ports: [{{name: https, port: 8443}}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: secure-1, namespace: default, labels: {{kubernetes.io/service-name: secure}}}}\naddressType: IPv4\nports: [{{name: https, port: {}}}]\nendpoints: [{{addresses: [127.0.0.1]}}]\n---\n",
        backend.port()
    );
    let policy = |hostname: &str, config_map: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: secure, namespace: default}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: secure, sectionName: https}}]\n  validation:\n    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: {config_map}}}]\n    hostname: {hostname}\n---\n")
    };
    let base = GATEWAY.to_string()
        + &service
        + &ca_config_map("backend-ca", &ca.pem())
        + &http_route(
            "secure",
            "  rules: [{backendRefs: [{name: secure, port: 8443}]}]\n",
        );
    let (_gw, c) = serve(&(base.clone() + &policy("secure.internal", "backend-ca")));
    let reply = c.get("h", "/").await;
    assert_eq!(
        (reply.status.as_u16(), &reply.body[..]),
        (200, &b"secure"[..])
    );
    // The backend's certificate is not for this name: no request reaches it.
    let (_gw, c) = serve(&(base.clone() + &policy("other.internal", "backend-ca")));
    assert_eq!(c.get("h", "/").await.status, 503);
    // No CA to check it with: never plaintext, never unchecked.
    let (_gw, c) = serve(&(base.clone() + &policy("secure.internal", "missing")));
    assert_ne!(c.get("h", "/").await.status, 200);
    // Without the policy the gateway speaks plaintext HTTP to the TLS port, which fails.
    let (_gw, c) = serve(&base);
    assert_ne!(c.get("h", "/").await.status, 200);
}

/// The Gateway's `tls.frontend` validation: an HTTPS listener asks for a client certificate
/// from the ConfigMap's CA and refuses clients without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_validation_requires_client_certificates() {
    let p = pods(&["app"]).await;
    let server_ca = Ca::new("gateway root");
    let leaf = server_ca.leaf(&["secure.example"]);
    let client_ca = Ca::new("client root");
    let client = client_ca.leaf(&["client.example"]);
    let yaml = k8s_service("app", "default", &[&p[0]])
        + &tls_secret("cert", &leaf.cert_pem, &leaf.key_pem, None)
            .replace("namespace: istio-system", "namespace: default")
        + &ca_config_map("clients", &client_ca.pem())
        + r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{group: "", kind: ConfigMap, name: clients}]
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example
    tls: {certificateRefs: [{name: cert}]}
---
"# + &http_route(
        "app",
        "  rules: [{backendRefs: [{name: app, port: 8000}]}]\n",
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let addr = gw.local_addr(443).unwrap();
    let with_cert = tls_connect(
        addr,
        "secure.example",
        client_config(&server_ca, Some(&client), false, false),
    )
    .await
    .unwrap();
    assert_eq!(
        tls_get(with_cert, "secure.example").await.unwrap().who(),
        "app"
    );
    // TLS 1.3 completes the client's side of the handshake before the server checks the
    // (missing) certificate: the refusal shows on the first request.
    let refused = match tls_connect(
        addr,
        "secure.example",
        client_config(&server_ca, None, false, false),
    )
    .await
    {
        Err(_) => true,
        Ok(tls) => tls_get(tls, "secure.example").await.is_err(),
    };
    assert!(refused, "a client without a certificate is refused");
}

/// ListenerSets add listeners to a Gateway that allows them (`allowedListeners`); routes attach
/// to a ListenerSet's listeners by `kind: ListenerSet`; a listener that repeats its Gateway's is
/// not served, nor is a ListenerSet from a namespace the Gateway does not allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_sets_add_listeners_to_gateways_that_allow_them() {
    let p = pods(&["own", "extra", "other"]).await;
    let yaml = k8s_service("own", "default", &[&p[0]])
        + &k8s_service("extra", "default", &[&p[1]])
        + &k8s_service("other", "team", &[&p[2]])
        + r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: sluice
  allowedListeners: {namespaces: {from: Same}}
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: own.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra, namespace: default}
spec:
  parentRef: {name: gw}
  listeners:
  - {name: alt, port: 8080, protocol: HTTP, hostname: extra.example}
  - {name: same, port: 80, protocol: HTTP, hostname: extra.example}
  - {name: clash, port: 80, protocol: HTTP, hostname: own.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: elsewhere, namespace: team}
spec:
  parentRef: {name: gw, namespace: default}
  listeners:
  - {name: team, port: 9090, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: own, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: own, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: extra, namespace: default}
spec:
  parentRefs: [{kind: ListenerSet, name: extra}]
  rules: [{backendRefs: [{name: extra, port: 8000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other, namespace: team}
spec:
  parentRefs: [{kind: ListenerSet, name: elsewhere}]
  rules: [{backendRefs: [{name: other, port: 8000}]}]
"#;
    let snap = snapshot(&yaml, &[]);
    assert!(
        snap.listener_for_service_port(9090).is_none(),
        "a ListenerSet the Gateway does not allow adds nothing"
    );
    let gw = gateway(snap, test_options());
    let c80 = TestClient::http1(gw.local_addr(80).unwrap());
    let c8080 = TestClient::http1(gw.local_addr(8080).unwrap());
    assert_eq!(c80.get("own.example", "/").await.who(), "own");
    assert_eq!(c80.get("extra.example", "/").await.who(), "extra");
    assert_eq!(c8080.get("extra.example", "/").await.who(), "extra");
    assert_eq!(c8080.get("own.example", "/").await.who(), "404");
    // The clashing listener repeats the Gateway's: the route to the set does not get own.example.
    assert_eq!(c80.get("own.example", "/x").await.who(), "own");
}

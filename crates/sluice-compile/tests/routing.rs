//! Routing semantics, one test per documented Istio rule, through compile + select_route.
use sluice_compile::snapshot::ClusterProblem;
use sluice_compile::{
    compile, select_route, GatewayIdentity, RequestView, RouteDecision, Snapshot,
};
use sluice_config::Loader;

fn snapshot_with(yaml: &str, labels: &[(&str, &str)]) -> Snapshot {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), yaml);
    let loaded = l.finish();
    let (store, diags) = sluice_compile::check(&loaded, &Default::default());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut id = GatewayIdentity::default();
    if !labels.is_empty() {
        id.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    compile(&store, &id).0
}

fn snapshot(yaml: &str) -> Snapshot {
    snapshot_with(yaml, &[])
}

/// "ns/vs#index", "404", "301 <location>", or "200 direct".
fn route(s: &Snapshot, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    route_full(s, 80, "GET", host, path, headers)
}

fn route_full(
    s: &Snapshot,
    port: u32,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    let Some(listener) = s.listener_for_service_port(port) else {
        return "no listener".into();
    };
    let table = &s.route_tables[listener.route_table(None).unwrap()];
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = RequestView {
        authority: host,
        path_and_query: path,
        method,
        scheme: "http",
        port,
        headers: headers.as_slice(),
    };
    match select_route(table, &req) {
        RouteDecision::Forward { route, .. } => {
            format!("{}#{}", route.virtual_service, route.index)
        }
        RouteDecision::NoRoute { .. } => "404".into(),
        RouteDecision::Redirect {
            status, location, ..
        } => format!("{status} {location}"),
        RouteDecision::DirectResponse { status, .. } => format!("{status} direct"),
    }
}

const GW: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n";
const SVC: &str = "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc, namespace: default}\nspec:\n  hosts: [a.default.svc.cluster.local, b.default.svc.cluster.local]\n  ports: [{number: 8000, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - {address: 10.0.0.1, labels: {version: v1}, ports: {http: 9001}}\n  - {address: 10.0.0.2, labels: {version: v2}, weight: 3}\n";

fn vs(name: &str, hosts: &str, http: &str) -> String {
    format!("---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  hosts: {hosts}\n  gateways: [gw]\n  http:\n{http}")
}

#[test]
fn seed_routes_as_documented() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed");
    let loaded = sluice_config::load_paths(&[dir]).unwrap();
    let (store, _) = sluice_compile::check(&loaded, &Default::default());
    let (s, _) = compile(&store, &GatewayIdentity::default());
    assert_eq!(route(&s, "any.host", "/users/7", &[]), "default/demo#0");
    assert_eq!(route(&s, "any.host", "/tasks", &[]), "default/demo#1");
    assert_eq!(route(&s, "any.host", "/", &[]), "404");
    let stable = &s.clusters["outbound|8000|stable|demo.default.svc.cluster.local"];
    assert_eq!(
        stable.endpoints.iter().map(|e| e.port).collect::<Vec<_>>(),
        vec![18001, 18002]
    );
    let test = &s.clusters["outbound|8000|testversion|demo.default.svc.cluster.local"];
    assert_eq!(test.endpoints.len(), 1);
    assert_eq!(test.lb, sluice_compile::snapshot::LbPolicy::RoundRobin);
    assert_eq!(stable.lb, sluice_compile::snapshot::LbPolicy::LeastRequest);
}

#[test]
fn every_match_type() {
    let http = r#"  - match: [{uri: {exact: /exact}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {regex: "/re/[0-9]+"}}]
    route: [{destination: {host: a}}]
  - match: [{headers: {x-env: {exact: canary}}}]
    route: [{destination: {host: a}}]
  - match: [{headers: {x-present: {}}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /nq}, withoutHeaders: {x-block: {}}}]
    route: [{destination: {host: a}}]
  - match: [{queryParams: {v: {exact: "2"}}}]
    route: [{destination: {host: a}}]
  - match: [{method: {exact: POST}}]
    route: [{destination: {host: a}}]
  - match: [{authority: {prefix: api.}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /CASE}, ignoreUriCase: true}]
    route: [{destination: {host: a}}]
  - match: [{port: 8080}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /p1}}, {uri: {prefix: /p2}}]
    route: [{destination: {host: a}}]
"#;
    let s = snapshot(&format!("{GW}{SVC}{}", vs("m", "[\"*\"]", http)));
    let r = |path: &str, h: &[(&str, &str)]| route(&s, "x.com", path, h);
    assert_eq!(r("/exact", &[]), "default/m#0");
    assert_eq!(r("/exact/more", &[]), "404");
    assert_eq!(r("/re/42", &[]), "default/m#1");
    assert_eq!(r("/re/42x", &[]), "404", "regex is a full match");
    assert_eq!(r("/h", &[("x-env", "canary")]), "default/m#2");
    assert_eq!(
        r("/h", &[("X-Env", "canary")]),
        "default/m#2",
        "header names are case-insensitive"
    );
    assert_eq!(r("/h", &[("x-env", "prod")]), "404");
    assert_eq!(r("/h", &[("x-present", "")]), "default/m#3");
    assert_eq!(r("/nq", &[]), "default/m#4");
    assert_eq!(r("/nq", &[("x-block", "1")]), "404");
    assert_eq!(r("/q?a=1&v=2", &[]), "default/m#5");
    assert_eq!(r("/q?v=20", &[]), "404");
    assert_eq!(
        route_full(&s, 80, "POST", "x.com", "/m", &[]),
        "default/m#6"
    );
    assert_eq!(route(&s, "api.x.com", "/z", &[]), "default/m#7");
    assert_eq!(r("/case/x", &[]), "default/m#8");
    assert_eq!(r("/p2/x", &[]), "default/m#10", "match entries are OR-ed");
    assert_eq!(r("/a/../exact", &[]), "default/m#0", "paths are normalised");
}

#[test]
fn merge_order_puts_catch_alls_last_and_drops_rules_after_one() {
    let first = vs("first", "[x.com]", "  - route: [{destination: {host: a}}]\n  - match: [{uri: {prefix: /never}}]\n    route: [{destination: {host: a}}]\n");
    let second = vs(
        "second",
        "[x.com]",
        "  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: b}}]\n",
    );
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), &format!("{GW}{SVC}{first}{second}"));
    let (store, _) = sluice_compile::check(&l.finish(), &Default::default());
    let (s, _) = compile(&store, &GatewayIdentity::default());
    assert_eq!(route(&s, "x.com", "/api/1", &[]), "default/second#0");
    assert_eq!(route(&s, "x.com", "/never", &[]), "default/first#0");
    let vh = &s.route_tables["http.80"].virtual_hosts[0];
    assert_eq!(vh.name, "x.com:80");
    assert_eq!(vh.routes.len(), 2);
}

#[test]
fn most_specific_virtual_host_wins_and_host_port_is_ignored() {
    let s = snapshot(&format!(
        "{GW}{SVC}{}{}{}",
        vs(
            "wild",
            "[\"*.example.com\"]",
            "  - route: [{destination: {host: a}}]\n"
        ),
        vs(
            "exact",
            "[a.example.com]",
            "  - route: [{destination: {host: a}}]\n"
        ),
        vs("any", "[\"*\"]", "  - route: [{destination: {host: a}}]\n"),
    ));
    assert_eq!(route(&s, "a.example.com:80", "/", &[]), "default/exact#0");
    assert_eq!(route(&s, "B.Example.com", "/", &[]), "default/wild#0");
    assert_eq!(
        route(&s, "example.com", "/", &[]),
        "default/any#0",
        "*.example.com does not cover example.com"
    );
}

#[test]
fn gateways_apply_by_selector_and_namespace_rules() {
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: public, namespace: default}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: [\"./*.public.com\"]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: private, namespace: default}}\nspec:\n  selector: {{istio: internal-gateway}}\n  servers:\n  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: [\"*.private.com\"]\n{SVC}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: both, namespace: default}}\nspec:\n  hosts: [a.public.com, a.private.com]\n  gateways: [public, private]\n  http: [{{route: [{{destination: {{host: a}}}}]}}]\n"
    );
    let public = snapshot_with(&yaml, &[("istio", "ingressgateway")]);
    assert_eq!(route(&public, "a.public.com", "/", &[]), "default/both#0");
    assert_eq!(route(&public, "a.private.com", "/", &[]), "404");
    let private = snapshot_with(&yaml, &[("istio", "internal-gateway")]);
    assert_eq!(route(&private, "a.private.com", "/", &[]), "default/both#0");
    assert_eq!(route(&private, "a.public.com", "/", &[]), "404");
}

#[test]
fn destination_rule_precedence_gateway_namespace_first() {
    let dr = |ns: &str, subset: &str| {
        format!("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr, namespace: {ns}}}\nspec:\n  host: a.default.svc.cluster.local\n  subsets: [{{name: {subset}, labels: {{version: v2}}}}]\n")
    };
    let yaml = format!("{GW}{SVC}{}{}{}", dr("default", "fromsvc"), dr("istio-system", "fromgw"), vs("v", "[\"*\"]", "  - match: [{uri: {prefix: /g}}]\n    route: [{destination: {host: a, subset: fromgw}}]\n  - route: [{destination: {host: a, subset: fromsvc}}]\n"));
    // validate says what the compile does: the service-namespace subset is not seen.
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), &yaml);
    let (_, diags) = sluice_compile::check(&l.finish(), &Default::default());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("a+fromsvc"));
    let s = compiled(&yaml, &GatewayIdentity::default());
    let gw = &s.clusters["outbound|8000|fromgw|a.default.svc.cluster.local"];
    assert_eq!(gw.problem, None);
    assert_eq!(gw.endpoints.len(), 1);
    // The gateway-namespace rule shadows the service-namespace one entirely.
    let svc = &s.clusters["outbound|8000|fromsvc|a.default.svc.cluster.local"];
    assert_eq!(svc.problem, Some(ClusterProblem::UnknownSubset));
}

#[test]
fn endpoint_ports_and_weights_come_from_the_service_entry() {
    let s = snapshot(&format!(
        "{GW}{SVC}{}",
        vs("v", "[\"*\"]", "  - route: [{destination: {host: a}}]\n")
    ));
    let c = &s.clusters["outbound|8000||a.default.svc.cluster.local"];
    let eps: Vec<(String, u32, u32)> = c
        .endpoints
        .iter()
        .map(|e| (e.address.clone(), e.port, e.weight))
        .collect();
    assert_eq!(
        eps,
        vec![("10.0.0.1".into(), 9001, 1), ("10.0.0.2".into(), 8000, 3)]
    );
}

#[test]
fn weights_are_relative_and_zero_weights_dropped() {
    let s = snapshot(&format!("{GW}{SVC}{}", vs("v", "[\"*\"]", "  - route:\n    - {destination: {host: a}, weight: 3}\n    - {destination: {host: b}, weight: 1}\n    - {destination: {host: a, port: {number: 8000}}, weight: 0}\n")));
    let vh = &s.route_tables["http.80"].virtual_hosts[0];
    let sluice_compile::snapshot::Action::Forward(f) = &vh.routes[0].action else {
        panic!()
    };
    assert_eq!(f.total_weight, 4);
    assert_eq!(f.destinations.len(), 2);
}

#[test]
fn redirects() {
    let http = "  - match: [{uri: {prefix: /old}}]\n    redirect: {uri: /new, derivePort: FROM_REQUEST_PORT}\n  - match: [{uri: {prefix: /q}}]\n    redirect: {uri: \"/n?x=1\", authority: other.com, redirectCode: 308}\n";
    let s = snapshot(&format!("{GW}{SVC}{}", vs("r", "[\"*\"]", http)));
    assert_eq!(
        route(&s, "x.com", "/old/a?k=v", &[]),
        "301 http://x.com/new?k=v"
    );
    assert_eq!(
        route(&s, "x.com", "/q?k=v", &[]),
        "308 http://other.com/n?x=1"
    );
}

#[test]
fn https_redirect_answers_every_host_of_the_server() {
    let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"secure.com\"]\n    tls: {httpsRedirect: true}\n";
    let s = snapshot(gw);
    assert_eq!(
        route(&s, "secure.com:8080", "/p?q=1", &[]),
        "301 https://secure.com:8080/p?q=1"
    );
}

#[test]
fn unknown_host_keeps_its_route_with_a_cluster_problem() {
    let mut l = Loader::new();
    l.add_text(
        "t.yaml".into(),
        &format!(
            "{GW}{}",
            vs(
                "v",
                "[\"*\"]",
                "  - route: [{destination: {host: ghost}}]\n"
            )
        ),
    );
    let (store, _) = sluice_compile::check(&l.finish(), &Default::default());
    let (s, _) = compile(&store, &GatewayIdentity::default());
    assert_eq!(route(&s, "x", "/", &[]), "default/v#0");
    assert_eq!(
        s.clusters["outbound|80||ghost.default.svc.cluster.local"].problem,
        Some(ClusterProblem::UnknownHost)
    );
}

#[test]
fn port_map_names_listener_and_table_after_the_bound_port() {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), GW);
    let store = sluice_config::Store::new(l.finish().objects);
    let id = GatewayIdentity {
        port_map: [(80, 8080)].into(),
        ..Default::default()
    };
    let (s, _) = compile(&store, &id);
    let listener = s.listener_for_service_port(80).unwrap();
    assert_eq!(
        (listener.name.as_str(), listener.route_table(None).unwrap()),
        ("0.0.0.0_8080", "http.8080")
    );
}

/// The gateway's own Service in front of it (Istio's `istio-ingressgateway`: 80 → 8080).
const OWN_SERVICE: &str = "---\napiVersion: v1\nkind: Service\nmetadata: {name: istio-ingressgateway, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  ports:\n  - {name: http2, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: 8443}\n";

fn compiled(yaml: &str, id: &GatewayIdentity) -> Snapshot {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), yaml);
    let store = sluice_config::Store::new(l.finish().objects);
    compile(&store, id).0
}

/// (listener, route table, first virtual host) of Gateway port 80.
fn port_80_names(s: &Snapshot) -> (String, String, String) {
    let listener = s.listener_for_service_port(80).unwrap();
    let table = listener.route_table(None).unwrap();
    (
        listener.name.clone(),
        table.to_string(),
        s.route_tables[table].virtual_hosts[0].name.clone(),
    )
}

#[test]
fn the_instances_own_service_translates_ports_as_istio_does() {
    let yaml = format!(
        "{GW}{}{OWN_SERVICE}",
        vs(
            "a",
            "[a.example]",
            "  - route: [{destination: {host: a}}]\n"
        )
    );
    let s = compiled(&yaml, &GatewayIdentity::default());
    // Listener and table use the target port; the virtual host keeps the server port.
    assert_eq!(
        port_80_names(&s),
        (
            "0.0.0.0_8080".into(),
            "http.8080".into(),
            "a.example:80".into()
        )
    );
    // --port-map still wins.
    let id = GatewayIdentity {
        port_map: [(80, 9090)].into(),
        ..Default::default()
    };
    assert_eq!(port_80_names(&compiled(&yaml, &id)).0, "0.0.0.0_9090");
    // A Service that does not select the instance, or lives elsewhere, translates nothing.
    let other = GatewayIdentity {
        labels: [("istio".to_string(), "private".to_string())].into(),
        ..Default::default()
    };
    let private_gw = GW.replace("ingressgateway", "private");
    assert_eq!(
        port_80_names(&compiled(&format!("{private_gw}{OWN_SERVICE}"), &other)).0,
        "0.0.0.0_80"
    );
    let elsewhere = OWN_SERVICE.replace("namespace: istio-system", "namespace: default");
    assert_eq!(
        port_80_names(&compiled(
            &format!("{GW}{elsewhere}"),
            &GatewayIdentity::default()
        ))
        .0,
        "0.0.0.0_80"
    );
    // Istio's opt-out label.
    let opted_out = OWN_SERVICE.replace(
        "namespace: istio-system}",
        "namespace: istio-system, labels: {experimental.istio.io/disable-gateway-port-translation: \"true\"}}",
    );
    assert_eq!(
        port_80_names(&compiled(
            &format!("{GW}{opted_out}"),
            &GatewayIdentity::default()
        ))
        .0,
        "0.0.0.0_80"
    );
}

#[test]
fn a_service_entry_at_the_instance_ip_is_its_own_service() {
    let own = "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: gateway, namespace: istio-system}\nspec:\n  hosts: [gateway.example.internal]\n  resolution: STATIC\n  ports:\n  - {number: 80, name: http, protocol: HTTP}\n  endpoints:\n  - {address: 192.0.2.10, ports: {http: 8081}}\n";
    let yaml = format!("{GW}{own}");
    let id = GatewayIdentity {
        instance_ip: Some("192.0.2.10".into()),
        ..Default::default()
    };
    assert_eq!(port_80_names(&compiled(&yaml, &id)).0, "0.0.0.0_8081");
    // Without --instance-ip (or at another address) the ServiceEntry is someone else's.
    assert_eq!(
        port_80_names(&compiled(&yaml, &GatewayIdentity::default())).0,
        "0.0.0.0_80"
    );
}

#[test]
fn a_route_table_nothing_binds_to_is_a_blackhole() {
    let s = compiled(GW, &GatewayIdentity::default());
    assert_eq!(port_80_names(&s).2, "blackhole:80");
    assert_eq!(route(&s, "any.example", "/", &[]), "404");
}

/// Istio reads `regex: "*"` in a header match as "present" (not a regex).
#[test]
fn header_regex_star_means_present() {
    let s = snapshot(&format!(
        "{GW}{SVC}{}",
        vs(
            "v",
            "[\"*\"]",
            "  - match: [{withoutHeaders: {x-debug: {regex: \"*\"}}}]\n    route: [{destination: {host: a}}]\n  - match: [{headers: {x-debug: {regex: \"*\"}}}]\n    route: [{destination: {host: b}}]\n"
        )
    ));
    assert_eq!(route(&s, "h", "/", &[]), "default/v#0");
    assert_eq!(route(&s, "h", "/", &[("x-debug", "")]), "default/v#1");
}

/// As Istio: the first server on a port decides its protocol; a later HTTPS server there is
/// skipped, and plaintext HTTP keeps the port.
#[test]
fn the_first_server_decides_what_a_port_speaks() {
    let later_https = "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: late, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: https, protocol: HTTPS}\n    hosts: [\"*\"]\n    tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}\n";
    let s = compiled(&format!("{GW}{later_https}"), &GatewayIdentity::default());
    assert!(matches!(
        s.listener_for_service_port(80).unwrap().protocol,
        sluice_compile::snapshot::ListenerProtocol::Http { .. }
    ));
}

/// DestinationRules for one host merge: a later rule's trafficPolicy fills an earlier rule's
/// absent one (Istio's mergeDestinationRule).
#[test]
fn a_later_rule_fills_an_absent_traffic_policy() {
    let dr = |name: &str, body: &str| {
        format!("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  host: a.default.svc.cluster.local\n{body}")
    };
    let yaml = format!(
        "{GW}{SVC}{}{}{}",
        dr(
            "subsets",
            "  subsets: [{name: v1, labels: {version: v1}}]\n"
        ),
        dr(
            "policy",
            "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
        ),
        vs(
            "v",
            "[\"*\"]",
            "  - route: [{destination: {host: a, subset: v1}}]\n"
        )
    );
    let s = compiled(&yaml, &GatewayIdentity::default());
    let c = &s.clusters["outbound|8000|v1|a.default.svc.cluster.local"];
    assert_eq!(c.lb, sluice_compile::snapshot::LbPolicy::RoundRobin);
}

/// IST0145 as Istio acts on it: a later Gateway's TLS server that claims a host an earlier
/// Gateway serves on the port is skipped whole (its other hosts too).
#[test]
fn a_later_server_claiming_a_served_host_is_skipped_whole() {
    let gw = |name: &str, hosts: &str| {
        format!("---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 443, name: https-{name}, protocol: HTTPS}}\n    hosts: {hosts}\n    tls: {{mode: SIMPLE, serverCertificate: /c, privateKey: /k}}\n")
    };
    let yaml = format!(
        "{}{}",
        gw("first", "[a.example]"),
        gw("second", "[a.example, b.example]")
    );
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), &yaml);
    let store = sluice_config::Store::new(l.finish().objects);
    let (s, diags) = compile(&store, &GatewayIdentity::default());
    let sluice_compile::snapshot::ListenerProtocol::Tls { servers } =
        &s.listener_for_service_port(443).unwrap().protocol
    else {
        panic!("a TLS port")
    };
    assert_eq!(servers.len(), 1);
    assert!(
        servers[0].name.ends_with(".first.default"),
        "{}",
        servers[0].name
    );
    assert!(diags
        .iter()
        .any(|d| d.code == "IST0145" && d.message.contains("second")));
}

/// One sluice process per Gateway API Gateway: `--gateway` picks which of its class it serves;
/// without it, every Gateway of the class is served.
#[test]
fn gateway_names_pick_the_gateways_served() {
    let gw = |name: &str, port: u32| {
        format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  gatewayClassName: sluice\n  listeners: [{{name: http, port: {port}, protocol: HTTP}}]\n")
    };
    let yaml = format!("{}{}", gw("public", 80), gw("internal", 81));
    let ports = |names: &[&str]| {
        let id = GatewayIdentity {
            gateway_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        };
        compiled(&yaml, &id)
            .listeners
            .keys()
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(ports(&[]), [80, 81]);
    assert_eq!(ports(&["default/internal"]), [81]);
}

/// Two TLS servers of one Gateway on one port with a host in common: Istio keeps the first and
/// skips the second whole (its other hosts too); validate says so at the second server.
#[test]
fn a_repeated_tls_host_within_one_gateway_skips_the_later_server() {
    let yaml = r#"
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: istio-system}
type: kubernetes.io/tls
stringData: {tls.crt: x, tls.key: y}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: cert}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [a.example.com, b.example.com]
    tls: {mode: SIMPLE, credentialName: cert}
"#;
    let mut l = sluice_config::Loader::new();
    l.add_text("t.yaml".into(), yaml);
    let store = sluice_config::Store::new(l.finish().objects);
    let (snapshot, _) = sluice_compile::compile(&store, &GatewayIdentity::default());
    let servers = match &snapshot.listener_for_service_port(443).unwrap().protocol {
        sluice_compile::snapshot::ListenerProtocol::Tls { servers } => servers,
        other => panic!("{other:?}"),
    };
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0].sni, ["a.example.com"]);
    let diags = sluice_compile::analyze::analyze(&store, &Default::default());
    assert!(
        diags
            .iter()
            .any(|d| d.code == "SLU0030" && d.message.contains("repeats host a.example.com")),
        "{diags:#?}"
    );
}

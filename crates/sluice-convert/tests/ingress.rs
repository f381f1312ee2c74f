//! Ingress → Gateway API: ingress2gateway's names and structure, with Istio's reading of
//! ImplementationSpecific paths, TLS Secrets and repeated paths.
mod common;
use common::*;
use serde_json::json;
use sluice_convert::From;

#[test]
fn one_gateway_per_namespace_and_class_with_listeners_per_host() {
    let c = convert(&load("testdata/ingress.yaml"), From::Ingress);
    let gw = find(&c.objects, "Gateway", "shop", "istio");
    assert_eq!(gw.value["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(gw.value["spec"]["gatewayClassName"], "istio");
    let listeners = &gw.value["spec"]["listeners"];
    assert_eq!(
        names(listeners),
        ["shop-example-com-http", "http", "shop-example-com-https"]
    );
    assert_eq!(
        listeners[0],
        json!({"name": "shop-example-com-http", "hostname": "shop.example.com", "port": 80, "protocol": "HTTP"})
    );
    assert_eq!(
        listeners[1],
        json!({"name": "http", "port": 80, "protocol": "HTTP"})
    );
    // Istio reads secretName in the gateway's namespace: the reference points there, granted.
    assert_eq!(
        listeners[2],
        json!({"name": "shop-example-com-https", "hostname": "shop.example.com", "port": 443, "protocol": "HTTPS",
               "tls": {"certificateRefs": [{"group": "", "kind": "Secret", "name": "shop-cert", "namespace": "istio-system"}]}})
    );
    let grant = find(
        &c.objects,
        "ReferenceGrant",
        "istio-system",
        "from-shop-gateway-to-secret",
    );
    assert_eq!(
        grant.value["spec"],
        json!({"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "shop"}],
               "to": [{"group": "", "kind": "Secret", "name": "shop-cert"}]})
    );
}

#[test]
fn one_route_per_host_named_after_the_first_ingress_in_istio_order() {
    let c = convert(&load("testdata/ingress.yaml"), From::Ingress);
    let route = find(&c.objects, "HTTPRoute", "shop", "shop-shop-example-com");
    assert_eq!(
        route.value["spec"]["parentRefs"],
        json!([{"name": "istio"}])
    );
    assert_eq!(
        route.value["spec"]["hostnames"],
        json!(["shop.example.com"])
    );
    let rules = route.value["spec"]["rules"].as_array().expect("rules");
    let summary: Vec<(serde_json::Value, serde_json::Value)> = rules
        .iter()
        .map(|r| (r["matches"].clone(), r["backendRefs"][0]["name"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                json!([{"path": {"type": "Exact", "value": "/api/v1/health"}}]),
                json!("health")
            ),
            // ImplementationSpecific `/static/*`: Istio's string prefix `/static`.
            (
                json!([{"path": {"type": "PathPrefix", "value": "/static"}}, {"path": {"type": "RegularExpression", "value": "/static[^/].*"}}]),
                json!("web")
            ),
            (
                json!([{"path": {"type": "PathPrefix", "value": "/admin"}}]),
                json!("admin")
            ),
            (
                json!([{"path": {"type": "Exact", "value": "/login"}}]),
                json!("admin")
            ),
            (
                json!([{"path": {"type": "PathPrefix", "value": "/api"}}]),
                json!("api")
            ),
        ]
    );
    // A port by name is looked up in the Service.
    assert_eq!(
        rules[1]["backendRefs"][0],
        json!({"name": "web", "port": 80})
    );
    let all = find(&c.objects, "HTTPRoute", "shop", "shop-all-hosts");
    assert!(all.value["spec"].get("hostnames").is_none());
    assert_eq!(
        all.value["spec"]["rules"],
        json!([{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "web", "port": 80}]}])
    );
}

#[test]
fn default_backend_and_repeated_paths_are_warned_and_commented() {
    let loaded = load("testdata/ingress.yaml");
    let c = convert(&loaded, From::Ingress);
    assert_eq!(
        warned_fields(&c),
        ["spec.defaultBackend", "spec.rules[0].http.paths[1]"]
    );
    let lines: Vec<u32> = c
        .warnings
        .iter()
        .map(|w| w.origin.as_ref().expect("origin").line)
        .collect();
    assert_eq!(lines, [19, 62], "{:?}", c.warnings);
    let db = find(&c.objects, "HTTPRoute", "shop", "shop-default-backend");
    assert!(db.disabled);
    let yaml = sluice_convert::yaml(&c.objects);
    assert!(
        yaml.contains("# kind: \"HTTPRoute\"\n"),
        "the default-backend route is written commented out:\n{yaml}"
    );
    assert!(yaml.contains("Istio ignores defaultBackend"));
    assert!(yaml.contains("path \"/api\" repeats an earlier path"));
    // Only the repeated path's first backend (api) is kept.
    assert!(!sluice_convert::json(&c.objects).contains("default-backend"));
}

#[test]
fn no_host_and_no_class() {
    let loaded = load_text(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: plain, namespace: web}\nspec:\n  tls: [{secretName: site-cert}]\n  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: site, port: {number: 8080}}}}\n",
    );
    let c = convert(&loaded, From::Ingress);
    let gw = find(&c.objects, "Gateway", "web", "istio");
    assert_eq!(names(&gw.value["spec"]["listeners"]), ["http", "https"]);
    // Host-less rules stay on the listeners without hostname (Istio's `*` virtual host).
    let route = find(&c.objects, "HTTPRoute", "web", "plain-all-hosts");
    assert_eq!(
        route.value["spec"]["parentRefs"],
        json!([{"name": "istio", "sectionName": "http"}, {"name": "istio", "sectionName": "https"}])
    );
    assert_eq!(warned_fields(&c), ["spec"]);
}

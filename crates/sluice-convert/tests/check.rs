//! `convert --check`: the converted objects answer every generated request as the originals
//! do, for the examples and the test inputs; a hand-broken conversion fails with a readable diff.
mod common;
use common::*;
use sluice_config::{Kind, Loaded};
use sluice_convert::check::check;
use sluice_convert::{From, Options};

fn from_of(loaded: &Loaded) -> Option<From> {
    let has = |k: Kind| loaded.objects.iter().any(|o| o.kind == k);
    if has(Kind::Ingress) {
        Some(From::Ingress)
    } else if has(Kind::VirtualService) || has(Kind::Gateway) {
        Some(From::Istio)
    } else {
        None
    }
}

fn passes(loaded: &Loaded, from: From, what: &str) {
    let c = convert(loaded, from);
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(loaded, &yaml, &Options::new(from)).expect("both compile");
    assert!(
        report.probes.len() > 10,
        "{what}: only {} requests",
        report.probes.len()
    );
    assert!(
        report.differences.is_empty(),
        "{what}:\n{}\n{yaml}",
        report.text()
    );
}

#[test]
fn every_example_converts_without_a_difference() {
    let mut checked = Vec::new();
    for root in ["../../examples", "../../../shared/examples"] {
        let Ok(dirs) = std::fs::read_dir(path(root)) else {
            continue;
        };
        for dir in dirs.flatten().map(|d| d.path()).filter(|p| p.is_dir()) {
            let loaded = sluice_config::load_paths(&[&dir]).expect("readable");
            if loaded.has_errors() {
                continue; // examples/bad: refused before any conversion
            }
            if let Some(from) = from_of(&loaded) {
                passes(&loaded, from, &dir.display().to_string());
                checked.push(dir);
            }
        }
    }
    assert!(
        checked.iter().any(|d| d.ends_with("examples/ingress")),
        "{checked:?}"
    );
    assert!(
        checked.iter().any(|d| d.ends_with("examples/seed")),
        "{checked:?}"
    );
}

#[test]
fn ingress_converts_without_a_difference() {
    passes(
        &load("testdata/ingress.yaml"),
        From::Ingress,
        "ingress.yaml",
    );
}

#[test]
fn istio_converts_with_only_the_warned_difference() {
    // The one difference the conversion warns about: Istio's prefix rewrite of /legacy also
    // rewrites /legacyx (to /v2x); the Gateway API's ReplacePrefixMatch works on whole elements.
    let loaded = load("testdata/istio.yaml");
    let c = convert(&loaded, From::Istio);
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(&loaded, &yaml, &Options::new(From::Istio)).expect("both compile");
    assert!(report.probes.len() > 50, "{}", report.probes.len());
    assert!(!report.differences.is_empty());
    for d in &report.differences {
        let p = d.probe.path.as_str();
        assert!(
            p.starts_with("/legacy") && p != "/legacy" && !p.starts_with("/legacy/"),
            "{}\n{yaml}",
            report.text()
        );
        assert!(d.original.contains("path=/v2"), "{}", report.text());
    }
}

#[test]
fn a_broken_conversion_fails_with_a_readable_diff() {
    let loaded = load("testdata/istio.yaml");
    let c = convert(&loaded, From::Istio);
    let yaml = sluice_convert::yaml(&c.objects);
    let broken = yaml.replacen("weight: 80", "weight: 50", 1);
    assert_ne!(broken, yaml);
    let report = check(&loaded, &broken, &Options::new(From::Istio)).expect("both compile");
    assert!(!report.differences.is_empty());
    let text = report.text();
    assert!(
        text.contains("difference: GET http://shop.example.com:80/api\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "original:  forward 80.00% → [10.1.0.1:9001, 10.1.0.2:9001] + 20.00% → [10.1.0.3:9002]"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "converted: forward 71.43% → [10.1.0.1:9001, 10.1.0.2:9001] + 28.57% → [10.1.0.3:9002]"
        ),
        "{text}"
    );
    assert!(
        text.contains("by VirtualService shop/shop http[1] api"),
        "{text}"
    );
    assert!(
        text.contains("by HTTPRoute shop/shop rules[1] api"),
        "{text}"
    );
    assert!(text.contains("check FAILED"), "{text}");

    // An Ingress conversion whose exact path lost its rule.
    let loaded = load("testdata/ingress.yaml");
    let c = convert(&loaded, From::Ingress);
    let yaml = sluice_convert::yaml(&c.objects);
    let broken = yaml.replacen("\"Exact\"", "\"PathPrefix\"", 1);
    let report = check(&loaded, &broken, &Options::new(From::Ingress)).expect("both compile");
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.probe.path == "/api/v1/health/x"),
        "{}",
        report.text()
    );
}

#[test]
fn output_that_does_not_load_is_an_error() {
    let loaded = load("testdata/istio.yaml");
    let err = check(
        &loaded,
        "kind: HTTPRoute\n  bad: [",
        &Options::new(From::Istio),
    )
    .expect_err("invalid");
    assert!(err.to_string().contains("do not load"), "{err}");
}

/// A self-signed certificate for `host` as a `kubernetes.io/tls` Secret in istio-system.
fn tls_secret(name: &str, host: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let indent = |pem: String| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(cert.pem()),
        indent(key.serialize_pem())
    )
}

#[test]
fn https_redirect_tls_and_passthrough_convert_without_a_difference() {
    let text = format!(
        "{}---\n{}",
        tls_secret("secure-cert", "secure.example.com"),
        concat!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: web}\n",
            "spec:\n  selector: {istio: ingressgateway}\n  servers:\n",
            "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [secure.example.com]\n    tls: {httpsRedirect: true}\n",
            "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [secure.example.com]\n    tls: {mode: SIMPLE, credentialName: secure-cert}\n",
            "  - port: {number: 8443, name: tls, protocol: TLS}\n    hosts: [db.example.com]\n    tls: {mode: PASSTHROUGH}\n",
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: secure, namespace: web}\n",
            "spec:\n  hosts: [secure.example.com]\n  gateways: [edge]\n  http:\n",
            "  - match: [{uri: {prefix: /app}}]\n    route: [{destination: {host: app, port: {number: 80}}}]\n",
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db, namespace: web}\n",
            "spec:\n  hosts: [db.example.com]\n  gateways: [edge]\n  tls:\n",
            "  - match: [{sniHosts: [db.example.com]}]\n    route: [{destination: {host: db, port: {number: 5432}}}]\n",
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: web}\nspec:\n  ports: [{name: http, port: 80}]\n",
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: app-1, namespace: web, labels: {kubernetes.io/service-name: app}}\n",
            "addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints: [{addresses: [10.2.0.1]}]\n",
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: web}\nspec:\n  ports: [{name: tls, port: 5432}]\n",
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-1, namespace: web, labels: {kubernetes.io/service-name: db}}\n",
            "addressType: IPv4\nports: [{name: tls, port: 5432}]\nendpoints: [{addresses: [10.2.0.2]}]\n",
        )
    );
    let loaded = load_text(&text);
    let c = convert(&loaded, From::Istio);
    find(
        &c.objects,
        "ReferenceGrant",
        "istio-system",
        "from-web-gateway-to-secret",
    );
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(&loaded, &yaml, &Options::new(From::Istio)).expect("both compile");
    assert!(report.differences.is_empty(), "{}\n{yaml}", report.text());
    let probes: Vec<String> = report.probes.iter().map(ToString::to_string).collect();
    for p in [
        "GET https://secure.example.com:443/app",
        "GET http://secure.example.com:80/app",
        "TLS connection to port 8443 with SNI db.example.com",
    ] {
        assert!(probes.iter().any(|x| x == p), "{p} not among {probes:?}");
    }
}

/// A Service `name` in `ns` on port 80 with one endpoint.
fn service(ns: &str, name: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  ports: [{{name: http, port: 80}}]\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: {ns}, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints: [{{addresses: [{ip}]}}]\n"
    )
}

#[test]
fn istio_order_is_kept_where_specificity_would_change_it() {
    let mut text = String::from(concat!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: ns}\n",
        "spec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n",
        "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: ns}\n",
        "spec:\n  hosts: [a.example.com]\n  gateways: [gw]\n  http:\n",
        // /api/health is shadowed by /api in Istio; the Gateway API would prefer the exact path.
        "  - match: [{uri: {prefix: /api/}}]\n    route: [{destination: {host: a}}]\n",
        "  - match: [{uri: {exact: /api/health}}]\n    route: [{destination: {host: b}}]\n",
        // /docs with x-beta comes first in Istio, also for /docs/v2 (the longer prefix).
        "  - match: [{uri: {prefix: /docs}, headers: {x-beta: {exact: '1'}}}]\n    route: [{destination: {host: c}}]\n",
        "  - match: [{uri: {prefix: /docs/v2}}]\n    route: [{destination: {host: d}}]\n",
        "  - route: [{destination: {host: e}}]\n",
    ));
    for (name, ip) in [
        ("a", "10.3.0.1"),
        ("b", "10.3.0.2"),
        ("c", "10.3.0.3"),
        ("d", "10.3.0.4"),
        ("e", "10.3.0.5"),
    ] {
        text.push_str(&service("ns", name, ip));
    }
    let loaded = load_text(&text);
    let c = convert(&loaded, From::Istio);
    let rules = &find(&c.objects, "HTTPRoute", "ns", "vs").value["spec"]["rules"];
    let backends: Vec<&str> = rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["backendRefs"][0]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(backends, ["a", "c", "d", "e"], "{rules:#}");
    assert_eq!(
        rules[1]["matches"][2],
        serde_json::json!({"path": {"type": "PathPrefix", "value": "/docs/v2"}, "headers": [{"name": "x-beta", "type": "Exact", "value": "1"}]}),
        "{rules:#}"
    );
    assert_eq!(warned_fields(&c), ["spec.http[1]"]);
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(&loaded, &yaml, &Options::new(From::Istio)).expect("both compile");
    assert!(report.differences.is_empty(), "{}\n{yaml}", report.text());
    assert!(report
        .probes
        .iter()
        .any(|p| p.path == "/docs/v2" && p.headers == [("x-beta".to_string(), "1".to_string())]));
}

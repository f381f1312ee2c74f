//! Cross-object checks (istioctl analyze), one per code.
use sluice_compile::{check, AnalyzeOptions};
use sluice_config::Loader;

fn codes(yaml: &str) -> Vec<(&'static str, u32)> {
    let mut l = Loader::new();
    l.add_text("t.yaml".into(), yaml);
    let (_, diags) = check(&l.finish(), &AnalyzeOptions::default());
    diags
        .iter()
        .map(|d| (d.code, d.origin.as_ref().map_or(0, |o| o.line)))
        .collect()
}

const HEAD: &str = "apiVersion: networking.istio.io/v1\nkind:";

fn gateway(name: &str, port: u32, proto: &str, host: &str, tls: &str) -> String {
    format!("---\n{HEAD} Gateway\nmetadata: {{name: {name}, namespace: istio-system}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: {port}, name: p{port}, protocol: {proto}}}\n    hosts: [\"{host}\"]\n{tls}")
}

const SE: &str = "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s, namespace: default}\nspec:\n  hosts: [multi.default.svc.cluster.local]\n  ports: [{number: 80, name: http, protocol: HTTP}, {number: 9090, name: metrics, protocol: HTTP}]\n";

#[test]
fn host_not_in_gateway_is_ist0132() {
    let yaml = format!("{}---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [other.com]\n  gateways: [istio-system/gw]\n  http: [{{directResponse: {{status: 200}}}}]\n", gateway("gw", 80, "HTTP", "a.com", ""));
    assert_eq!(codes(&yaml), vec![("IST0132", 15)]);
}

#[test]
fn namespace_restricted_server_host_is_ist0132() {
    let yaml = format!("{}---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n  http: [{{directResponse: {{status: 200}}}}]\n", gateway("gw", 80, "HTTP", "prod/a.com", ""));
    assert_eq!(codes(&yaml), vec![("IST0132", 15)]);
}

#[test]
fn conflicting_tls_servers_are_ist0145() {
    let tls = "    tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}\n";
    let yaml = format!(
        "{}{}",
        gateway("first", 443, "HTTPS", "a.com", tls),
        gateway("second", 443, "HTTPS", "a.com", tls)
    );
    assert_eq!(codes(&yaml), vec![("IST0145", 18)]);
    // A wildcard and an exact host are not duplicates.
    let yaml = format!(
        "{}{}",
        gateway("first", 443, "HTTPS", "*.a.com", tls),
        gateway("second", 443, "HTTPS", "b.a.com", tls)
    );
    assert!(codes(&yaml).is_empty());
}

#[test]
fn missing_or_incomplete_credential_is_ist0161() {
    let tls = "    tls: {mode: SIMPLE, credentialName: cert}\n";
    assert_eq!(
        codes(&gateway("gw", 443, "HTTPS", "a.com", tls)),
        vec![("IST0161", 10)]
    );
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: istio-system}\nstringData: {tls.crt: x}\n";
    assert_eq!(
        codes(&format!(
            "{}{secret}",
            gateway("gw", 443, "HTTPS", "a.com", tls)
        )),
        vec![("IST0161", 10)]
    );
    // Both keys present but not PEM: still unusable (checked in certificate_material_is_checked).
    let full = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: istio-system}\nstringData: {tls.crt: x, tls.key: y}\n";
    assert_eq!(
        codes(&format!(
            "{}{full}",
            gateway("gw", 443, "HTTPS", "a.com", tls)
        )),
        vec![("IST0161", 10)]
    );
}

#[test]
fn multi_port_destination_without_port_is_ist0112() {
    let yaml = format!("{}{SE}---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n  http:\n  - route: [{{destination: {{host: multi}}}}]\n  - route: [{{destination: {{host: multi, port: {{number: 81}}}}}}]\n", gateway("gw", 80, "HTTP", "*", ""));
    assert_eq!(
        codes(&yaml),
        vec![
            ("IST0112", 25),
            ("SLU0032", 25),
            ("IST0130", 26),
            ("SLU0032", 26),
            ("IST0101", 26)
        ]
    );
}

#[test]
fn destination_rule_tls_without_ca_is_ist0128() {
    let yaml = format!("---\n{HEAD} DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: a\n  trafficPolicy:\n    tls: {{mode: SIMPLE}}\n    portLevelSettings: [{{port: {{number: 443}}, tls: {{mode: SIMPLE, caCertificates: /ca}}}}, {{port: {{number: 8443}}, tls: {{mode: SIMPLE}}}}]\n");
    assert_eq!(codes(&yaml), vec![("IST0128", 8), ("IST0129", 9)]);
}

#[test]
fn passthrough_server_with_only_http_routes_is_slu0013() {
    let tls = "    tls: {mode: PASSTHROUGH}\n";
    let vs = |routes: &str| {
        format!("---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n{routes}")
    };
    let http_only = format!(
        "{}{}",
        gateway("gw", 443, "TLS", "a.com", tls),
        vs("  http: [{directResponse: {status: 200}}]\n")
    );
    assert!(codes(&http_only).iter().any(|(c, _)| *c == "SLU0013"));
    let with_tls = format!(
        "{}{}",
        gateway("gw", 443, "TLS", "a.com", tls),
        vs("  tls: [{match: [{sniHosts: [a.com]}], route: [{destination: {host: a.com}}]}]\n")
    );
    assert!(!codes(&with_tls).iter().any(|(c, _)| *c == "SLU0013"));
}

/// A kubernetes.io/tls Secret from PEM text.
fn tls_secret(name: &str, cert: &str, key: &str) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(cert),
        indent(key)
    )
}

#[test]
fn certificate_material_is_checked() {
    let key = rcgen::KeyPair::generate().unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut old = rcgen::CertificateParams::new(vec!["a.com".to_string()]).unwrap();
    old.not_before = rcgen::date_time_ymd(2019, 1, 1);
    old.not_after = rcgen::date_time_ymd(2020, 1, 1);
    let expired = old.self_signed(&key).unwrap();
    let server = "    tls: {mode: SIMPLE, credentialName: c}\n";
    let run = |secret: String| {
        let yaml = format!("{}{secret}", gateway("gw", 443, "HTTPS", "a.com", server));
        let mut l = Loader::new();
        l.add_text("t.yaml".into(), &yaml);
        let opts = AnalyzeOptions {
            now_unix: Some(1_800_000_000),
            ..Default::default()
        };
        let (_, diags) = check(&l.finish(), &opts);
        diags
            .iter()
            .filter(|d| d.code == "IST0161")
            .map(|d| format!("{:?} {}", d.severity, d.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(tls_secret("c", &cert.pem(), &key.serialize_pem())),
        Vec::<String>::new()
    );
    let mismatch = run(tls_secret("c", &cert.pem(), &other_key.serialize_pem()));
    assert!(
        mismatch
            .iter()
            .any(|m| m.starts_with("Error") && m.contains("do not belong together")),
        "{mismatch:?}"
    );
    let old = run(tls_secret("c", &expired.pem(), &key.serialize_pem()));
    assert!(
        old.iter()
            .any(|m| m.starts_with("Warning") && m.contains("expired")),
        "{old:?}"
    );
}

#[test]
fn istio_mutual_is_slu0014() {
    let dr = |mode: &str| {
        format!("---\n{HEAD} DestinationRule\nmetadata: {{name: d, namespace: default}}\nspec:\n  host: a.default.svc.cluster.local\n  trafficPolicy:\n    portLevelSettings: [{{port: {{number: 80}}, tls: {{mode: {mode}}}}}]\n")
    };
    assert_eq!(codes(&dr("ISTIO_MUTUAL")), vec![("SLU0014", 8)]);
    assert_eq!(codes(&dr("DISABLE")), vec![]);
}

#[test]
fn a_subset_without_endpoints_is_slu0032() {
    let yaml = format!("{}---\n{HEAD} ServiceEntry\nmetadata: {{name: app, namespace: default}}\nspec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  endpoints: [{{address: 10.0.0.1, labels: {{version: v1}}}}]\n---\n{HEAD} DestinationRule\nmetadata: {{name: app, namespace: default}}\nspec:\n  host: app\n  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v3, labels: {{version: v3}}}}]\n---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n  http:\n  - route:\n    - {{destination: {{host: app, subset: v1}}, weight: 50}}\n    - {{destination: {{host: app, subset: v3}}, weight: 50}}\n", gateway("gw", 80, "HTTP", "a.com", ""));
    assert_eq!(codes(&yaml), vec![("SLU0032", 36)]);
}

#[test]
fn a_virtual_service_hidden_from_the_gateway_is_slu0031() {
    let yaml = format!("{}---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n  exportTo: [\".\"]\n  http: [{{directResponse: {{status: 200}}}}]\n", gateway("gw", 80, "HTTP", "a.com", ""));
    assert_eq!(codes(&yaml), vec![("SLU0031", 17)]);
}

/// Why an instance has nothing to listen on, named by its cause.
#[test]
fn nothing_to_serve_names_the_cause() {
    let why = |yaml: &str| {
        let mut l = Loader::new();
        l.add_text("t.yaml".into(), yaml);
        let store = sluice_config::Store::new(l.finish().objects);
        let (s, diags) = sluice_compile::compile(&store, &Default::default());
        assert!(s.listeners.is_empty());
        diags.last().unwrap().message.clone()
    };
    assert!(why("").starts_with("no Gateway in the configuration"));
    let other =
        gateway("gw", 80, "HTTP", "a.com", "").replace("istio: ingressgateway", "app: edge");
    let msg = why(&other);
    assert!(
        msg.contains("istio-system/gw selects app=edge") && msg.contains("--gateway-labels"),
        "{msg}"
    );
    let bad_cert = gateway(
        "gw",
        443,
        "HTTPS",
        "a.com",
        "    tls: {mode: SIMPLE, credentialName: missing}\n",
    );
    assert!(why(&bad_cert).contains("none of their servers can be served"));
}

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

const SE: &str = "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s, namespace: default}\nspec:\n  hosts: [multi.default.svc.cluster.local]\n  ports: [{number: 80, name: http}, {number: 9090, name: metrics}]\n";

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
    let full = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: istio-system}\nstringData: {tls.crt: x, tls.key: y}\n";
    assert!(codes(&format!(
        "{}{full}",
        gateway("gw", 443, "HTTPS", "a.com", tls)
    ))
    .is_empty());
}

#[test]
fn multi_port_destination_without_port_is_ist0112() {
    let yaml = format!("{}{SE}---\n{HEAD} VirtualService\nmetadata: {{name: v, namespace: default}}\nspec:\n  hosts: [a.com]\n  gateways: [istio-system/gw]\n  http:\n  - route: [{{destination: {{host: multi}}}}]\n  - route: [{{destination: {{host: multi, port: {{number: 81}}}}}}]\n", gateway("gw", 80, "HTTP", "*", ""));
    assert_eq!(
        codes(&yaml),
        vec![("IST0112", 25), ("IST0130", 26), ("IST0101", 26)]
    );
}

#[test]
fn destination_rule_tls_without_ca_is_ist0128() {
    let yaml = format!("---\n{HEAD} DestinationRule\nmetadata: {{name: d}}\nspec:\n  host: a\n  trafficPolicy:\n    tls: {{mode: SIMPLE}}\n    portLevelSettings: [{{port: {{number: 443}}, tls: {{mode: SIMPLE, caCertificates: /ca}}}}, {{port: {{number: 8443}}, tls: {{mode: SIMPLE}}}}]\n");
    assert_eq!(codes(&yaml), vec![("IST0128", 8), ("IST0129", 9)]);
}

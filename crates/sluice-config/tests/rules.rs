//! Istio's per-object validation rules, one row each: a spec fragment and what must be said
//! about it (`None`: nothing). Written from the istio.io reference for networking/v1.
use sluice_config::{validate::validate_object, Loader, Severity};

/// Returns the field paths of every error for `kind` with this `spec` (YAML, indented 2).
fn errors(kind: &str, spec: &str) -> Vec<String> {
    let mut l = Loader::new();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {{name: t}}\nspec:\n{spec}"
    );
    l.add_text("t.yaml".into(), &text);
    let loaded = l.finish();
    let mut out = loaded.diagnostics.clone();
    for o in &loaded.objects {
        validate_object(o, &mut out);
    }
    out.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            format!(
                "{} {} {}",
                d.field.clone().unwrap_or_default(),
                d.message,
                d.help.clone().unwrap_or_default()
            )
        })
        .collect()
}

fn check(kind: &str, rows: &[(&str, Option<&str>)]) {
    for (spec, expect) in rows {
        let errs = errors(kind, spec);
        match expect {
            None => assert!(
                errs.is_empty(),
                "{kind} should be valid:\n{spec}\ngot {errs:#?}"
            ),
            Some(needle) => assert!(
                errs.iter().any(|e| e.contains(needle)),
                "{kind} should report `{needle}`:\n{spec}\ngot {errs:#?}"
            ),
        }
    }
}

const HTTP_SERVER: &str = "  selector: {istio: ingressgateway}\n  servers:\n";

#[test]
fn gateway_rules() {
    let row = |server: &str| format!("{HTTP_SERVER}  - {server}\n");
    let rows = [
        (row("port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]"), None),
        (row("port: {number: 80, name: http, protocol: http}\n    hosts: [\"ns/*.example.com\", \"./a.com\"]"), None),
        ("  selector: {istio: ingressgateway}\n".to_string(), Some("at least one server")),
        (row("port: {number: 0, name: http, protocol: HTTP}\n    hosts: [a.com]"), Some("out of range")),
        (row("port: {number: 70000, name: http, protocol: HTTP}\n    hosts: [a.com]"), Some("out of range")),
        (row("port: {number: 80, protocol: HTTP}\n    hosts: [a.com]"), Some("port name is required")),
        (row("port: {number: 80, name: m, protocol: MONGO}\n    hosts: [a.com]"), Some("not supported on a gateway")),
        (row("port: {number: 80, name: http, protocol: HTTP}\n    hosts: []"), Some("at least one host")),
        (row("port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"a.*.com\"]"), Some("wildcard")),
        (row("port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"Bad_NS/a.com\"]"), Some("not a namespace")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]"), Some("needs a tls block")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE}"), Some("needs a certificate")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE, credentialName: c}"), None),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k}"), Some("caCertificates")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE, credentialName: c, privateKey: /k}"), Some("not both")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}"), Some("higher than")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE, credentialName: c, cipherSuites: [AES128-SHA]}"), Some("not supported")),
        (row("port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPEL, credentialName: c}"), Some("unknown value \"SIMPEL\"")),
        (row("port: {number: 443, name: tls, protocol: TLS}\n    hosts: [a.com]\n    tls: {mode: PASSTHROUGH}"), None),
        (row("port: {number: 80, name: http, protocol: HTTP}\n    hosts: [a.com]\n    tls: {httpsRedirect: true}"), None),
    ];
    let rows: Vec<(&str, Option<&str>)> = rows.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    check("Gateway", &rows);
}

#[test]
fn virtual_service_rules() {
    let base = "  hosts: [a.com]\n  gateways: [gw]\n  http:\n";
    let rows: Vec<(String, Option<&str>)> = vec![
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n"), None),
        ("  gateways: [gw]\n  http:\n  - route: [{destination: {host: a}}]\n".into(), Some("hosts is required")),
        ("  http:\n  - route: [{destination: {host: a}}]\n".into(), None), // a delegate
        ("  hosts: [\"*\"]\n  http:\n  - route: [{destination: {host: a}}]\n".into(), Some("not allowed for VirtualServices bound to the mesh")),
        ("  hosts: [a.com]\n  gateways: [gw]\n".into(), Some("needs http, tls or tcp")),
        (format!("{base}  - match: [{{uri: {{prefix: /a}}}}]\n"), Some("needs one of route, redirect")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    redirect: {{uri: /b}}\n"), Some("only one of")),
        (format!("{base}  - redirect: {{uri: /b}}\n    rewrite: {{uri: /c}}\n"), Some("cannot be combined with redirect")),
        (format!("{base}  - redirect: {{uri: /b, redirectCode: 200}}\n"), Some("not a redirect status")),
        (format!("{base}  - redirect: {{uri: /b, port: 8080, derivePort: FROM_REQUEST_PORT}}\n"), Some("not both")),
        (format!("{base}  - directResponse: {{status: 700}}\n"), Some("between 200 and 599")),
        (format!("{base}  - directResponse: {{status: 200, body: {{string: a, bytes: YQ==}}}}\n"), Some("exactly one of string or bytes")),
        (format!("{base}  - match: [{{uri: {{prefix: /a, exact: /a}}}}]\n    route: [{{destination: {{host: a}}}}]\n"), Some("exactly one of exact, prefix or regex")),
        (format!("{base}  - match: [{{uri: {{regex: \"(?=a)\"}}}}]\n    route: [{{destination: {{host: a}}}}]\n"), Some("does not compile")),
        (format!("{base}  - match: [{{uri: {{regex: \"/a/(v1|v2)/.*\"}}}}]\n    route: [{{destination: {{host: a}}}}]\n"), None),
        (format!("{base}  - match: [{{queryParams: {{q: {{prefix: a}}}}}}]\n    route: [{{destination: {{host: a}}}}]\n"), Some("exact or regex only")),
        (format!("{base}  - match: [{{headers: {{\"bad header\": {{exact: a}}}}}}]\n    route: [{{destination: {{host: a}}}}]\n"), Some("not a valid header name")),
        (format!("{base}  - route: [{{destination: {{host: a}}, weight: -1}}, {{destination: {{host: b}}}}]\n"), Some("must not be negative")),
        (format!("{base}  - route: [{{destination: {{host: a}}, weight: 0}}, {{destination: {{host: b}}, weight: 0}}]\n"), Some("weight above 0")),
        (format!("{base}  - route: [{{destination: {{host: a}}, weight: 90}}, {{destination: {{host: b}}, weight: 10}}]\n"), None),
        (format!("{base}  - route: [{{destination: {{subset: v1}}}}]\n"), Some("destination host is required")),
        (format!("{base}  - route: [{{destination: {{host: a, subset: V_1}}}}]\n"), Some("not a valid name")),
        (format!("{base}  - route: [{{destination: {{host: \"*.a.com\"}}}}]\n"), Some("cannot be a wildcard")),
        (format!("{base}  - route: [{{destination: {{host: a, port: {{number: 99999}}}}}}]\n"), Some("out of range")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    timeout: 1.5s\n    retries: {{attempts: 3, perTryTimeout: 500ms, retryOn: \"5xx,connect-failure,503\"}}\n"), None),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    timeout: 10\n"), Some("invalid duration")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    retries: {{attempts: 2, retryOn: \"5xx,gateway-eror\"}}\n"), Some("not a retry condition")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    retries: {{attempts: -1}}\n"), Some("must not be negative")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    fault: {{abort: {{httpStatus: 503, percentage: {{value: 150}}}}}}\n"), Some("between 0 and 100")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    fault: {{delay: {{percentage: {{value: 10}}}}}}\n"), Some("fixedDelay is required")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    mirror: {{host: b}}\n    mirrors: [{{destination: {{host: c}}}}]\n"), Some("mirror or mirrors")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    corsPolicy: {{allowOrigins: [{{exact: \"https://x.com\"}}], allowMethods: [get]}}\n"), Some("not an HTTP method")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    headers: {{request: {{set: {{\"x y\": v}}}}}}\n"), Some("not a valid header name")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    timout: 5s\n"), Some("unknown field \"timout\"")),
        (format!("{base}  - route: [{{destination: {{host: a}}}}]\n    rewrite: {{uriRegexRewrite: {{match: \"^/a(\", rewrite: /b}}}}\n"), Some("does not compile")),
        ("  hosts: [a.com]\n  gateways: [gw]\n  tls:\n  - match: [{port: 443}]\n    route: [{destination: {host: a}}]\n".into(), Some("sniHosts is required")),
        ("  hosts: [a.com]\n  gateways: [gw]\n  tcp:\n  - match: [{port: 31400}]\n".into(), Some("at least one destination")),
        ("  hosts: [a.com]\n  gateways: [\"a/b/c\"]\n  tcp:\n  - route: [{destination: {host: a}}]\n".into(), Some("not a gateway reference")),
    ];
    let rows: Vec<(&str, Option<&str>)> = rows.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    check("VirtualService", &rows);
}

#[test]
fn destination_rule_rules() {
    check("DestinationRule", &[
        ("  host: a\n  subsets: [{name: v1, labels: {version: v1}}]\n", None),
        ("  subsets: [{name: v1}]\n", Some("host is required")),
        ("  host: a\n  subsets: [{name: v1}, {name: v1}]\n", Some("defined twice")),
        ("  host: a\n  subsets: [{name: Bad}]\n", Some("not a valid name")),
        ("  host: a\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, consistentHash: {httpHeaderName: x}}}\n", Some("not both")),
        ("  host: a\n  trafficPolicy: {loadBalancer: {consistentHash: {}}}\n", Some("exactly one of")),
        ("  host: a\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBBIN}}\n", Some("did you mean")),
        ("  host: a\n  trafficPolicy: {outlierDetection: {maxEjectionPercent: 150}}\n", Some("between 0 and 100")),
        ("  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}\n", Some("must not be negative")),
        ("  host: a\n  trafficPolicy: {tls: {mode: MUTUAL}}\n", Some("clientCertificate")),
        ("  host: a\n  trafficPolicy: {tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca}}\n", Some("not both")),
        ("  host: a\n  trafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}\n", Some("port is required")),
        ("  host: a\n  trafficPolicy: {portLevelSettings: [{port: {number: 80}}, {port: {number: 80}}]}\n", Some("two port-level")),
        ("  host: a\n  trafficPolicy: {tunnel: {protocol: CONNECT}}\n", Some("not implemented")),
    ]);
}

#[test]
fn service_entry_rules() {
    check("ServiceEntry", &[
        ("  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1, ports: {http: 8080}}]\n", None),
        ("  ports: [{number: 80, name: http}]\n", Some("hosts is required")),
        ("  hosts: [a.com]\n", Some("ports is required")),
        ("  hosts: [a.com]\n  ports: [{number: 80}]\n", Some("port name is required")),
        ("  hosts: [a.com]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]\n", Some("listed twice")),
        ("  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: backend.local}]\n", Some("not an IP address")),
        ("  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  endpoints: [{address: 10.0.0.1, ports: {grpc: 9000}}]\n", Some("not one of the ServiceEntry's ports")),
        ("  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STAITC\n", Some("did you mean \"STATIC\"")),
    ]);
}

/// Codes of the warnings for a VirtualService with one http route.
fn warning_codes(route: &str) -> Vec<&'static str> {
    let mut l = Loader::new();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: t}}\nspec:\n  hosts: [a]\n  http:\n  - {route}\n"
    );
    l.add_text("t.yaml".into(), &text);
    let loaded = l.finish();
    let mut out = Vec::new();
    for o in &loaded.objects {
        validate_object(o, &mut out);
    }
    out.iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.code)
        .collect()
}

#[test]
fn policy_traps_are_warned_about() {
    let rows: &[(&str, &[&str])] = &[
        ("{retries: {attempts: 2, retryOn: 5xx}, route: [{destination: {host: a}}]}", &["SLU0010"]),
        ("{match: [{method: {exact: GET}}], retries: {attempts: 2, retryOn: 5xx}, route: [{destination: {host: a}}]}", &[]),
        ("{retries: {attempts: 2, retryOn: connect-failure}, route: [{destination: {host: a}}]}", &[]),
        ("{match: [{uri: {prefix: /foo}}], rewrite: {uri: /bar}, route: [{destination: {host: a}}]}", &["SLU0011"]),
        ("{match: [{uri: {prefix: /foo/}}], rewrite: {uri: /bar/}, route: [{destination: {host: a}}]}", &[]),
        ("{fault: {abort: {httpStatus: 500}}, route: [{destination: {host: a}}]}", &["SLU0012"]),
        ("{fault: {delay: {fixedDelay: 1s, percentage: {value: 5}}}, route: [{destination: {host: a}}]}", &[]),
    ];
    for (route, want) in rows {
        assert_eq!(&warning_codes(route), want, "{route}");
    }
}

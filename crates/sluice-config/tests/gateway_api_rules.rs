//! The Gateway API's own rules for one object (the CRD schemas and CEL rules the API server
//! enforces), one row each: an object and what sluice must say. `Accept` rows carry no error;
//! `Error` rows name a part of the message.
use sluice_config::{validate::validate_object, Loader};

enum Want {
    Accept,
    Error(&'static str),
}
use Want::*;

fn errors(kind: &str, spec: &str) -> Vec<String> {
    let mut l = Loader::new();
    let text = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: t, namespace: default}}\nspec: {spec}\n"
    );
    l.add_text("t.yaml".into(), &text);
    let loaded = l.finish();
    let mut out = loaded.diagnostics.clone();
    for o in &loaded.objects {
        validate_object(o, &mut out);
    }
    out.iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.field.clone().unwrap_or_default(), d.message))
        .collect()
}

fn check(rows: &[(&str, &str, Want)]) {
    let mut failures = Vec::new();
    for (kind, spec, want) in rows {
        let found = errors(kind, spec);
        let ok = match want {
            Accept => found.is_empty(),
            Error(needle) => found.iter().any(|e| e.contains(needle)),
        };
        if !ok {
            let want = match want {
                Accept => "accepted".to_string(),
                Error(n) => format!("an error with `{n}`"),
            };
            failures.push(format!("{kind} {spec}\n  want {want}\n  got {found:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const PARENT: &str = "parentRefs: [{name: gw}]";

#[test]
fn grpc_route_rules() {
    let rule = |r: &str| format!("{{{PARENT}, rules: [{r}]}}");
    check(&[
        ("GRPCRoute", &rule("{matches: [{method: {service: helloworld.Greeter, method: SayHello}}], backendRefs: [{name: a, port: 8000}]}"), Accept),
        ("GRPCRoute", &rule("{matches: [{method: {type: Exact}}]}"), Error("needs service, method or both")),
        ("GRPCRoute", &rule("{matches: [{method: {service: \"hello/world\"}}]}"), Error("is not a fully-qualified gRPC service name")),
        ("GRPCRoute", &rule("{matches: [{method: {method: \"Say.Hello\"}}]}"), Error("is not a gRPC method name")),
        ("GRPCRoute", &rule("{matches: [{method: {type: RegularExpression, service: \"(\"}}]}"), Error("does not compile")),
        ("GRPCRoute", &rule("{matches: [{headers: [{name: \"bad name\", value: x}]}]}"), Error("is not a header name")),
        ("GRPCRoute", &rule("{backendRefs: [{name: a}]}"), Error("needs its port")),
        ("GRPCRoute", &rule("{filters: [{type: RequestHeaderModifier}]}"), Error("needs its own field set")),
        ("GRPCRoute", &rule("{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent: 50}}]}"), Accept),
        ("GRPCRoute", &format!("{{{PARENT}, hostnames: [\"Upper.example\"]}}"), Error("is not a hostname")),
    ]);
}

#[test]
fn backend_tls_policy_rules() {
    let target = "targetRefs: [{group: \"\", kind: Service, name: app}]";
    let ca = "caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]";
    let p = |validation: &str| format!("{{{target}, validation: {validation}}}");
    check(&[
        ("BackendTLSPolicy", &p(&format!("{{{ca}, hostname: app.internal}}")), Accept),
        ("BackendTLSPolicy", &p("{wellKnownCACertificates: System, hostname: app.internal}"), Accept),
        ("BackendTLSPolicy", &p("{hostname: app.internal}"), Error("set caCertificateRefs or wellKnownCACertificates")),
        ("BackendTLSPolicy", &p(&format!("{{{ca}, wellKnownCACertificates: System, hostname: a.b}}")), Error("cannot be used together")),
        ("BackendTLSPolicy", &p(&format!("{{{ca}}}")), Error("hostname (the SNI sent to the backend) is required")),
        ("BackendTLSPolicy", &p(&format!("{{{ca}, hostname: \"*.internal\"}}")), Error("no wildcard")),
        ("BackendTLSPolicy", &p("{caCertificateRefs: [{group: \"\", kind: Secret, name: ca}], hostname: a.b}"), Error("reads CA certificates from ConfigMaps")),
        ("BackendTLSPolicy", &p(&format!("{{{ca}, hostname: a.b, subjectAltNames: [{{type: URI, hostname: a.b}}]}}")), Error("type URI needs uri")),
        ("BackendTLSPolicy", &format!("{{targetRefs: [{{group: apps, kind: Deployment, name: app}}], validation: {{{ca}, hostname: a.b}}}}"), Error("to Services only")),
        ("BackendTLSPolicy", "{targetRefs: [{group: \"\", kind: Service, name: app}]}", Error("validation is required")),
    ]);
}

#[test]
fn route_and_gateway_rules() {
    check(&[
        ("HTTPRoute", &format!("{{{PARENT}, rules: [{{matches: [{{path: {{type: PathPrefix, value: /a}}}}], filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /b}}}}}}]}}]}}"), Accept),
        ("HTTPRoute", &format!("{{{PARENT}, rules: [{{matches: [{{path: {{type: Exact, value: /a}}}}], filters: [{{type: URLRewrite, urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /b}}}}}}]}}]}}"), Error("ReplacePrefixMatch needs exactly one PathPrefix match")),
        ("HTTPRoute", &format!("{{{PARENT}, rules: [{{timeouts: {{request: 1d}}}}]}}"), Error("is not a Gateway API duration")),
        ("HTTPRoute", &format!("{{{PARENT}, rules: [{{timeouts: {{request: 1s, backendRequest: 2s}}}}]}}"), Error("must not be longer than request")),
        ("TLSRoute", &format!("{{{PARENT}, rules: [{{backendRefs: [{{name: a, port: 1}}]}}]}}"), Error("needs at least one hostname")),
        ("TCPRoute", &format!("{{{PARENT}, rules: [{{backendRefs: []}}]}}"), Error("1 to 16 backendRefs")),
        ("Gateway", "{gatewayClassName: sluice, listeners: [{name: a, port: 443, protocol: TLS}]}", Error("needs tls.mode")),
        ("Gateway", "{gatewayClassName: sluice, listeners: [{name: a, port: 443, protocol: HTTPS, tls: {mode: Passthrough}}]}", Error("use protocol TLS for Passthrough")),
        ("Gateway", "{gatewayClassName: sluice, listeners: [{name: a, port: 80, protocol: HTTP}, {name: a, port: 81, protocol: HTTP}]}", Error("is used twice")),
    ]);
}

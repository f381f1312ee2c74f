//! Istio's per-object admission rules (Istio 1.31, `pkg/config/validation`), one row each: the
//! Istio function or rule it checks, an object, and what sluice must say. `Accept` rows are
//! objects Istio accepts (no error, no IST0133 warning); `Error` rows ones it refuses; `Warn`
//! rows ones it accepts with a warning. Rows marked "sluice:" are sluice's own, deliberate limits.
use sluice_config::{validate::validate_object, Diagnostic, Loader, Severity};

enum Want {
    Accept,
    Error(&'static str),
    Warn(&'static str),
}
use Want::*;

struct Row {
    /// The Istio validation function (or sluice rule) the row checks.
    rule: &'static str,
    kind: &'static str,
    meta: &'static str,
    spec: String,
    want: Want,
}

fn row(rule: &'static str, kind: &'static str, spec: String, want: Want) -> Row {
    Row {
        rule,
        kind,
        meta: "{name: t}",
        spec,
        want,
    }
}

fn diagnostics(kind: &str, meta: &str, spec: &str) -> Vec<Diagnostic> {
    let mut l = Loader::new();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {meta}\nspec: {spec}\n"
    );
    l.add_text("t.yaml".into(), &text);
    let loaded = l.finish();
    let mut out = loaded.diagnostics.clone();
    for o in &loaded.objects {
        validate_object(o, &mut out);
    }
    out
}

fn show(d: &Diagnostic) -> String {
    format!(
        "{} {} {} {}",
        d.code,
        d.field.clone().unwrap_or_default(),
        d.message,
        d.help.clone().unwrap_or_default()
    )
}

fn check(rows: &[Row]) {
    let mut failures = Vec::new();
    for r in rows {
        let out = diagnostics(r.kind, r.meta, &r.spec);
        let errors: Vec<String> = out.iter().filter(|d| d.is_error()).map(show).collect();
        let warnings: Vec<String> = out
            .iter()
            .filter(|d| d.severity == Severity::Warning && d.code == "IST0133")
            .map(show)
            .collect();
        let ok = match r.want {
            Accept => errors.is_empty() && warnings.is_empty(),
            Error(needle) => errors.iter().any(|e| e.contains(needle)),
            Warn(needle) => errors.is_empty() && warnings.iter().any(|w| w.contains(needle)),
        };
        if !ok {
            let want = match r.want {
                Accept => "accepted".to_string(),
                Error(n) => format!("an error with `{n}`"),
                Warn(n) => format!("only a warning with `{n}`"),
            };
            failures.push(format!(
                "[{}] {} {}\n  want {want}\n  errors {errors:#?}\n  warnings {warnings:#?}",
                r.rule, r.kind, r.spec
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn gw(server: &str) -> String {
    format!("{{selector: {{istio: ingressgateway}}, servers: [{server}]}}")
}
const HTTP: &str = "port: {number: 80, name: http, protocol: HTTP}";
const HTTPS: &str = "port: {number: 443, name: https, protocol: HTTPS}";

#[test]
fn gateway_rules() {
    let g = |rule, server: String, want| row(rule, "Gateway", gw(&server), want);
    let mut rows = vec![
        g("validateServer", format!("{{{HTTP}, hosts: [\"*\"]}}"), Accept),
        g("ValidateNamespaceSlashWildcardHostname", "{port: {number: 80, name: http, protocol: http}, hosts: [\"ns/*.example.com\", \"./a.com\", \"Prod/b.com\"]}".into(), Accept),
        g("ValidateNamespaceSlashWildcardHostname: IP hosts", format!("{{{HTTP}, hosts: [10.0.0.1]}}"), Accept),
        g("ValidateNamespaceSlashWildcardHostname: short names", format!("{{{HTTP}, hosts: [app]}}"), Error("short name")),
        g("ValidatePartialWildCard (gateways refuse them)", format!("{{{HTTP}, hosts: [\"*foo.com\"]}}"), Error("partial wildcard")),
        g("ValidateWildcardDomain", format!("{{{HTTP}, hosts: [\"a.*.com\"]}}"), Error("not a valid host name")),
        g("ValidateNamespaceSlashWildcardHostname: namespace", format!("{{{HTTP}, hosts: [\"Bad_NS/a.com\"]}}"), Error("not a namespace")),
        g("ValidateNamespaceSlashWildcardHostname: empty parts", format!("{{{HTTP}, hosts: [\"/a.com\"]}}"), Error("must not be empty")),
        g("validateServer: hosts", format!("{{{HTTP}, hosts: []}}"), Error("at least one host")),
        g("ValidateGateway: servers", String::new(), Error("at least one server")),
        g("validateServerPort: number", "{port: {number: 70000, name: http, protocol: HTTP}, hosts: [a.com]}".into(), Error("out of range")),
        g("validateServerPort: name", "{port: {number: 80, protocol: HTTP}, hosts: [a.com]}".into(), Error("port name is required")),
        g("validateServerPort: protocol Istio does not know", "{port: {number: 80, name: m, protocol: SMTP}, hosts: [a.com]}".into(), Error("not a protocol Istio knows")),
        g("validateServerPort: protocols Istio knows are accepted (compile skips what sluice does not serve)", "{port: {number: 27017, name: mongo, protocol: MONGO}, hosts: [a.com]}".into(), Accept),
        g("validateServerPort: targetPort", "{port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}, hosts: [a.com]}".into(), Error("targetPort has no effect")),
        g("validateServerBind: IP", format!("{{{HTTP}, bind: 10.0.0.1, hosts: [a.com]}}"), Accept),
        g("validateServerBind: not an IP", format!("{{{HTTP}, bind: localhost, hosts: [a.com]}}"), Error("not an IP address")),
        g("validateServerBind: unix socket needs port 0", format!("{{{HTTP}, bind: \"unix:///var/run/gw.sock\", hosts: [a.com]}}"), Error("must be 0")),
        g("validateServerBind: unix socket path", "{port: {number: 0, name: http, protocol: HTTP}, bind: \"unix://relative\", hosts: [a.com]}".into(), Error("absolute path")),
        g("validateServer: TLS protocols need tls", format!("{{{HTTPS}, hosts: [a.com]}}"), Error("needs a tls block")),
        g("validateServer: plain HTTP with httpsRedirect", format!("{{{HTTP}, hosts: [a.com], tls: {{httpsRedirect: true}}}}"), Accept),
        g("validateServer: plain HTTP with certificates", format!("{{{HTTP}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c}}}}"), Error("can only have")),
        g("validateServer: TCP with tls", "{port: {number: 31400, name: tcp, protocol: TCP}, hosts: [a.com], tls: {mode: PASSTHROUGH}}".into(), Error("cannot have TLS settings")),
        g("validateTLSOptions: SIMPLE needs a certificate", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE}}}}"), Error("needs a certificate")),
        g("validateTLSOptions: credentialName", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c}}}}"), Accept),
        g("validateTLSOptions: MUTUAL files need a CA", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: MUTUAL, serverCertificate: /c, privateKey: /k}}}}"), Error("caCertificates")),
        g("validateTLSOptions: OPTIONAL_MUTUAL files need a CA", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: OPTIONAL_MUTUAL, serverCertificate: /c, privateKey: /k}}}}"), Error("caCertificates")),
        g("validateTLSOptions: one certificate source", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, serverCertificate: /c, privateKey: /k}}}}"), Error("only one of")),
        g("validateTLSOptions: a lone privateKey beside credentialName is not a second source", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, privateKey: /k}}}}"), Accept),
        g("validateTLSOptions: each tlsCertificate needs a key", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, tlsCertificates: [{{serverCertificate: /c}}]}}}}"), Error("tlsCertificates[0]")),
        g("validateTLSOptions: caCrl with credentialName", "{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: PASSTHROUGH, caCrl: /crl, credentialName: c}}".into(), Error("caCrl cannot be combined")),
        g("validateTLSOptions: caCrl with SIMPLE", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, serverCertificate: /c, privateKey: /k, caCrl: /crl}}}}"), Error("SIMPLE TLS does not ask")),
        g("validateTLSOptions: ISTIO_MUTUAL with certificates", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: ISTIO_MUTUAL, credentialName: c}}}}"), Error("credentialName cannot be set")),
        g("validateTLSOptions: PASSTHROUGH ignores certificates (warning)", "{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: PASSTHROUGH, credentialName: c}}".into(), Warn("certificates are ignored")),
        g("validateTLSOptions: unknown cipher suites are ignored (warning)", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER]}}}}"), Warn("is ignored")),
        g("validateTLSOptions: duplicate cipher suites (warning)", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256]}}}}"), Warn("listed twice")),
        g("sluice: suites Istio knows but rustls lacks", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, cipherSuites: [AES128-SHA]}}}}"), Error("not supported by sluice")),
        g("sluice: TLS 1.0", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_0}}}}"), Error("not supported by sluice")),
        g("protocol versions in order", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}}}}"), Error("higher than")),
        g("schema: enum values", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: SIMPEL, credentialName: c}}}}"), Error("unknown value \"SIMPEL\"")),
        g("validateServer: passthrough", "{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: PASSTHROUGH}}".into(), Accept),
        g("istio/api 1.31 fields load", format!("{{{HTTPS}, hosts: [a.com], tls: {{mode: MUTUAL, credentialName: c, caCertCredentialName: ca, insecureSkipVerify: true}}}}"), Accept),
    ];
    rows.push(row("ValidateGateway: port names unique", "Gateway", gw(&format!("{{{HTTP}, hosts: [a.com]}}, {{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: [b.com]}}")), Error("used by another server")));
    rows.push(row("ValidateGateway: server names need not be unique", "Gateway", gw(&format!("{{{HTTP}, name: s, hosts: [a.com]}}, {{port: {{number: 8080, name: http2, protocol: HTTP}}, name: s, hosts: [b.com]}}")), Accept));
    rows.push(row("ValidateGateway: httpsRedirect on a non-HTTP server (warning)", "Gateway", gw("{port: {number: 443, name: tls, protocol: TLS}, hosts: [a.com], tls: {mode: PASSTHROUGH, httpsRedirect: true}}"), Warn("meant for HTTP servers")));
    rows.push(Row {
        meta: "{name: t, annotations: {istio.io/dry-run: \"true\"}}",
        ..row(
            "validateMetadata: dry-run is for AuthorizationPolicies",
            "Gateway",
            gw(&format!("{{{HTTP}, hosts: [a.com]}}")),
            Error("only AuthorizationPolicies"),
        )
    });
    rows.push(Row {
        meta: "{name: my.gateway}",
        ..row(
            "ValidateGateway: name is a DNS label",
            "Gateway",
            gw(&format!("{{{HTTP}, hosts: [a.com]}}")),
            Error("not a valid Gateway name"),
        )
    });
    check(&rows);
}

fn vs(route: &str) -> String {
    format!("{{hosts: [a.com], gateways: [gw], http: [{route}]}}")
}
const TO_A: &str = "route: [{destination: {host: a}}]";

#[test]
fn virtual_service_rules() {
    let v = |rule, route: String, want| row(rule, "VirtualService", vs(&route), want);
    let s = |rule, spec: &str, want| row(rule, "VirtualService", spec.to_string(), want);
    let rows = vec![
        v("validateHTTPRoute", format!("{{{TO_A}}}"), Accept),
        s("ValidateVirtualService: hosts", "{gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Error("a delegate lists no gateways")),
        s("ValidateVirtualService: delegates have no tcp routes", "{tcp: [{route: [{destination: {host: a}}]}]}", Error("cannot have tcp routes")),
        s("ValidateVirtualService: mesh and *", "{hosts: [\"*\"], http: [{route: [{destination: {host: a}}]}]}", Error("bound to the mesh")),
        s("ValidateVirtualService: * at a gateway", "{hosts: [\"*\"], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Accept),
        s("ValidateWildcardDomain: partial wildcards are valid", "{hosts: [\"*foo.com\"], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Accept),
        s("ValidateWildcardDomain: IP hosts", "{hosts: [10.1.2.3], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Accept),
        s("ValidateWildcardDomain: numeric top-level domain", "{hosts: [a.123], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Error("all digits")),
        s("ValidateVirtualService: duplicate hosts", "{hosts: [\"*.foo.com\", a.foo.com], gateways: [gw], http: [{route: [{destination: {host: a}}]}]}", Error("overlap")),
        s("ValidateVirtualService: a route is required", "{hosts: [a.com], gateways: [gw]}", Error("needs http, tls or tcp")),
        s("validateGatewayNames: namespace/name", "{hosts: [a.com], gateways: [istio-system/gw], http: [{route: [{destination: {host: a}}]}]}", Accept),
        s("validateGatewayNames: ./name is not a namespace", "{hosts: [a.com], gateways: [./gw], http: [{route: [{destination: {host: a}}]}]}", Error("is not a namespace")),
        s("validateGatewayNames: legacy name.namespace (warning)", "{hosts: [a.com], gateways: [gw.istio-system], http: [{route: [{destination: {host: a}}]}]}", Warn("legacy gateway name")),
        s("validateGatewayNames", "{hosts: [a.com], gateways: [\"a/b/c\"], http: [{route: [{destination: {host: a}}]}]}", Error("is not a gateway name")),
        s("ValidateVirtualService: JWT claim routing needs a gateway", "{hosts: [a.com], http: [{match: [{headers: {\"@request.auth.claims.group\": {exact: x}}}], route: [{destination: {host: a}}]}]}", Error("JWT claim")),
        s("validateExportTo", "{hosts: [a.com], gateways: [gw], exportTo: [\".\", \"*\"], http: [{route: [{destination: {host: a}}]}]}", Error("list nothing else")),
        s("validateExportTo: namespace names", "{hosts: [a.com], gateways: [gw], exportTo: [\"bad_ns\"], http: [{route: [{destination: {host: a}}]}]}", Error("not a namespace")),
        s("validateExportTo: ~ is for ServiceEntries", "{hosts: [a.com], gateways: [gw], exportTo: [\"~\"], http: [{route: [{destination: {host: a}}]}]}", Error("not a namespace")),
        s("validateExportTo: . and the own namespace", "{hosts: [a.com], gateways: [gw], exportTo: [\".\", default], http: [{route: [{destination: {host: a}}]}]}", Error("listed twice")),
        v("validateHTTPRouteConflict: route and redirect", format!("{{{TO_A}, redirect: {{uri: /b}}}}"), Error("cannot be combined with redirect")),
        v("validateHTTPRouteConflict: fault and directResponse", "{directResponse: {status: 503}, fault: {abort: {httpStatus: 500, percentage: {value: 1}}}}".into(), Error("fault cannot be combined with directResponse")),
        v("validateHTTPRouteConflict: an action is required", "{timeout: 1s}".into(), Error("needs one of route")),
        v("validateHTTPRouteConflict: root routes delegate only", "{delegate: {name: d}, redirect: {uri: /b}}".into(), Error("cannot also set redirect")),
        v("validateHTTPRouteConflict: mirror and mirrors", format!("{{{TO_A}, mirror: {{host: b}}, mirrors: [{{destination: {{host: c}}}}]}}"), Error("mirror or mirrors")),
        v("validateHTTPRouteDestinations: weights", "{route: [{destination: {host: a}, weight: 0}, {destination: {host: b}}]}".into(), Error("weight above 0")),
        v("validateHTTPRouteDestinations: weights", "{route: [{destination: {host: a}, weight: 90}, {destination: {host: b}, weight: 10}]}".into(), Accept),
        v("validateHTTPRouteDestinations: destination", "{route: [{weight: 1}]}".into(), Error("destination is required")),
        v("validateDestination: host", "{route: [{destination: {subset: v1}}]}".into(), Error("destination host is required")),
        v("validateDestination: * is not a host", "{route: [{destination: {host: \"*\"}}]}".into(), Error("cannot be \"*\"")),
        v("validateDestination: wildcard hosts are valid", "{route: [{destination: {host: \"*.a.com\"}}]}".into(), Accept),
        v("validateSubsetName", "{route: [{destination: {host: a, subset: V_1}}]}".into(), Error("not a valid name")),
        v("validateSubsetName: upper case is valid", "{route: [{destination: {host: a, subset: V1}}]}".into(), Accept),
        v("validatePortSelector", "{route: [{destination: {host: a, port: {number: 99999}}}]}".into(), Error("out of range")),
        v("validatePortSelector: number required", "{route: [{destination: {host: a, port: {}}}]}".into(), Error("out of range")),
        v("ValidateDuration: timeout", format!("{{{TO_A}, timeout: 0s}}"), Error("at least 1ms")),
        v("ValidateDuration: milliseconds", format!("{{{TO_A}, timeout: 1500us}}"), Error("millisecond precision")),
        v("schema: durations", format!("{{{TO_A}, timeout: 10}}"), Error("invalid duration")),
        v("validateHTTPRetry", format!("{{{TO_A}, timeout: 1.5s, retries: {{attempts: 3, perTryTimeout: 500ms, retryOn: \"5xx,connect-failure,503\"}}}}"), Accept),
        v("validateHTTPRetry: retryOn", format!("{{{TO_A}, retries: {{attempts: 2, retryOn: \"5xx,gateway-eror\"}}}}"), Error("not a retry condition")),
        v("validateHTTPRetry: retryOn is not trimmed", format!("{{{TO_A}, retries: {{attempts: 2, retryOn: \"5xx, reset\"}}}}"), Error("without spaces")),
        v("validateHTTPRetry: numeric codes are HTTP statuses", format!("{{{TO_A}, retries: {{attempts: 2, retryOn: \"599\"}}}}"), Error("not a retry condition")),
        v("validateHTTPRetry: attempts", format!("{{{TO_A}, retries: {{attempts: -1}}}}"), Error("must not be negative")),
        v("validateHTTPRetry: a policy with attempts 0", format!("{{{TO_A}, retries: {{retryOn: 5xx}}}}"), Error("attempts is 0")),
        v("validateHTTPRetry: attempts 0 alone disables", format!("{{{TO_A}, retries: {{attempts: 0}}}}"), Accept),
        v("validatePercentage", format!("{{{TO_A}, fault: {{abort: {{httpStatus: 503, percentage: {{value: 150}}}}}}}}"), Error("between 0.0001 and 100")),
        v("validatePercentage: tiny", format!("{{{TO_A}, fault: {{abort: {{httpStatus: 503, percentage: {{value: 0.00001}}}}}}}}"), Error("between 0.0001 and 100")),
        v("validateHTTPFaultInjectionDelay: no delay type is accepted", format!("{{{TO_A}, fault: {{delay: {{percentage: {{value: 10}}}}}}}}"), Accept),
        v("validateHTTPFaultInjectionDelay: exponentialDelay", format!("{{{TO_A}, fault: {{delay: {{exponentialDelay: 1s, percentage: {{value: 10}}}}}}}}"), Error("not supported (by Istio either)")),
        v("validateHTTPFaultInjectionAbort: no error type (warning)", format!("{{{TO_A}, fault: {{abort: {{percentage: {{value: 10}}}}}}}}"), Warn("does nothing")),
        v("validateHTTPFaultInjectionAbort: http2Error", format!("{{{TO_A}, fault: {{abort: {{http2Error: x, percentage: {{value: 10}}}}}}}}"), Error("http2Error")),
        v("validateGRPCStatus", format!("{{{TO_A}, fault: {{abort: {{grpcStatus: UNAVAILABEL, percentage: {{value: 10}}}}}}}}"), Error("not a gRPC status")),
        v("validateHTTPStatus: up to 600", format!("{{{TO_A}, fault: {{abort: {{httpStatus: 600, percentage: {{value: 10}}}}}}}}"), Accept),
        v("validateHTTPFaultInjection", format!("{{{TO_A}, fault: {{}}}}"), Error("needs delay or abort")),
        v("validateHTTPRoute: mirrorPercent deprecated (warning)", format!("{{{TO_A}, mirror: {{host: b}}, mirrorPercent: 50}}"), Warn("deprecated")),
        v("validateHTTPRoute: mirrorPercent above 100", format!("{{{TO_A}, mirror: {{host: b}}, mirrorPercent: 150}}"), Error("above 100")),
        v("validateHTTPMirrors: percentage", format!("{{{TO_A}, mirrors: [{{destination: {{host: b}}, percentage: {{value: 101}}}}]}}"), Error("between 0 and 100")),
        v("validateHTTPMirrors: destination", format!("{{{TO_A}, mirrors: [{{percentage: {{value: 10}}}}]}}"), Error("destination is required")),
        v("validateCORSPolicy: methods", format!("{{{TO_A}, corsPolicy: {{allowOrigins: [{{exact: \"https://x.com\"}}], allowMethods: [get]}}}}"), Error("not an HTTP method")),
        v("validateCORSHTTPMethod: only known methods", format!("{{{TO_A}, corsPolicy: {{allowMethods: [PURGE]}}}}"), Error("not an HTTP method")),
        v("validateAllowOrigins: a value", format!("{{{TO_A}, corsPolicy: {{allowOrigins: [{{exact: \"\"}}]}}}}"), Error("needs a value")),
        v("ValidateCORSHTTPHeaderName", format!("{{{TO_A}, corsPolicy: {{allowHeaders: [\"*\", x-a], exposeHeaders: [\"x b\"]}}}}"), Error("not a valid header name")),
        v("validateCORSPolicy: maxAge in seconds", format!("{{{TO_A}, corsPolicy: {{maxAge: 1500ms}}}}"), Error("whole seconds")),
        v("ValidateHTTPHeaderOperationName: host in response", format!("{{{TO_A}, headers: {{response: {{set: {{host: x}}}}}}}}"), Error("cannot be changed here")),
        v("ValidateHTTPHeaderWithAuthorityOperationName: pseudo-headers", format!("{{{TO_A}, headers: {{request: {{set: {{\":path\": /x}}}}}}}}"), Error("pseudo-header")),
        v("ValidateHTTPHeaderWithAuthorityOperationName: host in request", format!("{{{TO_A}, headers: {{request: {{set: {{host: b.com}}}}}}}}"), Accept),
        v("ValidateHTTPHeaderValue: %", format!("{{{TO_A}, headers: {{request: {{set: {{x-a: \"50%\"}}}}}}}}"), Error("unescaped '%'")),
        v("sluice: header names Envoy refuses", format!("{{{TO_A}, headers: {{request: {{set: {{\"x y\": v}}}}}}}}"), Error("not a valid header name")),
        v("validateAuthorityRewrite", format!("{{{TO_A}, rewrite: {{authority: b.com}}, headers: {{request: {{set: {{host: c.com}}}}}}}}"), Error("more than once")),
        v("validateHTTPRouteMatchRequest: header names", format!("{{match: [{{headers: {{\"x y\": {{exact: a}}}}}}], {TO_A}}}"), Error("not a valid header name")),
        v("validateHTTPRouteMatchRequest: pseudo-headers match", format!("{{match: [{{headers: {{\":method\": {{exact: GET}}}}}}], {TO_A}}}"), Accept),
        v("validateStringMatch: empty prefix", format!("{{match: [{{authority: {{prefix: \"\"}}}}], {TO_A}}}"), Error("prefix must not be empty")),
        v("validateStringMatch: uri takes an empty prefix", format!("{{match: [{{uri: {{prefix: \"\"}}}}], {TO_A}}}"), Accept),
        v("validateStringMatch: an empty match tests presence", format!("{{match: [{{headers: {{x-a: {{}}}}}}], {TO_A}}}"), Accept),
        v("validateStringMatch: query parameters take prefix", format!("{{match: [{{queryParams: {{v: {{prefix: a}}}}}}], {TO_A}}}"), Accept),
        v("validateStringRegexp", format!("{{match: [{{uri: {{regex: \"^/a(\"}}}}], {TO_A}}}"), Error("does not compile")),
        v("translateHeaderMatch: withoutHeaders `regex: \"*\"` means the header is present", format!("{{match: [{{withoutHeaders: {{x-a: {{regex: \"*\"}}}}}}], {TO_A}}}"), Accept),
        v("validateHTTPRouteMatchRequest: sourceNamespace", format!("{{match: [{{sourceNamespace: Not_NS}}], {TO_A}}}"), Error("not a namespace")),
        v("labels.Instance.Validate: sourceLabels", format!("{{match: [{{sourceLabels: {{\"bad key!\": v}}}}], {TO_A}}}"), Error("not a valid label key")),
        v("schema: unknown fields", format!("{{{TO_A}, timout: 5s}}"), Error("unknown field \"timout\"")),
        v("validateURIRegexRewrite", format!("{{{TO_A}, rewrite: {{uriRegexRewrite: {{match: \"^/a(\", rewrite: /b}}}}}}"), Error("does not compile")),
        v("validateURIRegexRewrite: both fields", format!("{{{TO_A}, rewrite: {{uriRegexRewrite: {{match: \"^/a\"}}}}}}"), Error("both match and rewrite")),
        v("validateHTTPRewrite: something to rewrite", format!("{{{TO_A}, rewrite: {{}}}}"), Error("rewrite needs")),
        v("validateHTTPRedirect: a target", "{redirect: {redirectCode: 302}}".into(), Error("needs uri, authority")),
        v("validateHTTPRedirect: any 3xx", "{redirect: {uri: /b, redirectCode: 300}}".into(), Accept),
        v("validateHTTPRedirect: 3xx only", "{redirect: {uri: /b, redirectCode: 200}}".into(), Error("not a redirect status")),
        v("validateHTTPRedirect: scheme", "{redirect: {scheme: ftp}}".into(), Error("not http or https")),
        v("validateHTTPRedirect: uri or prefixRewrite", "{redirect: {uri: /a, prefixRewrite: /b}}".into(), Error("not both")),
        v("validateHTTPRedirect: prefixRewrite needs prefix matches", "{match: [{uri: {exact: /a}}], redirect: {prefixRewrite: /b}}".into(), Error("prefix match")),
        v("validateHTTPDirectResponse: status", "{directResponse: {status: 700}}".into(), Error("not between 200 and 599")),
        v("validateHTTPDirectResponse: body is optional", "{directResponse: {status: 204, body: {}}}".into(), Accept),
        v("validateHTTPDirectResponse: over 100 KiB (warning)", format!("{{directResponse: {{status: 200, body: {{string: \"{}\"}}}}}}", "x".repeat(110 * 1024)), Warn("over 100 KiB")),
        v("validateHTTPDirectResponse: over 1 MiB", format!("{{directResponse: {{status: 200, body: {{string: \"{}\"}}}}}}", "x".repeat(1024 * 1024 + 1)), Error("at most 1 MiB")),
        s("validateTLSMatch: sniHosts", "{hosts: [a.com], gateways: [gw], tls: [{match: [{port: 443}], route: [{destination: {host: a}}]}]}", Error("sniHosts is required")),
        s("validateSniHost: within the hosts", "{hosts: [a.com], gateways: [gw], tls: [{match: [{sniHosts: [b.com]}], route: [{destination: {host: a}}]}]}", Error("not within any")),
        s("validateSniHost: wildcard hosts cover", "{hosts: [\"*.a.com\"], gateways: [gw], tls: [{match: [{sniHosts: [x.a.com]}], route: [{destination: {host: a}}]}]}", Accept),
        s("validateSniHost: IP (warning)", "{hosts: [10.0.0.1], gateways: [gw], tls: [{match: [{sniHosts: [10.0.0.1]}], route: [{destination: {host: a}}]}]}", Warn("IP address")),
        s("ValidateIPSubnet", "{hosts: [a.com], gateways: [gw], tcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], route: [{destination: {host: a}}]}]}", Error("not a valid CIDR")),
        s("validateTCPRoute: route", "{hosts: [a.com], gateways: [gw], tcp: [{match: [{port: 31400}]}]}", Error("at least one destination")),
        s("validateTCPMatch: gateways", "{hosts: [a.com], gateways: [gw], tcp: [{match: [{gateways: [\"a/b/c\"]}], route: [{destination: {host: a}}]}]}", Error("not a gateway name")),
        s("istio/api 1.31: sourceSubnet loads", "{hosts: [a.com], gateways: [gw], tcp: [{match: [{sourceSubnet: 10.0.0.0/8}], route: [{destination: {host: a}}]}]}", Accept),
    ];
    check(&rows);
}

fn dr(policy: &str) -> String {
    format!("{{host: a, trafficPolicy: {policy}}}")
}

#[test]
fn destination_rule_rules() {
    let d = |rule, policy: &str, want| row(rule, "DestinationRule", dr(policy), want);
    let s = |rule, spec: &str, want| row(rule, "DestinationRule", spec.to_string(), want);
    let rows = vec![
        s("ValidateDestinationRule", "{host: a, subsets: [{name: v1, labels: {version: v1}}]}", Accept),
        s("ValidateWildcardDomain: host", "{subsets: [{name: v1}]}", Error("host is required")),
        s("ValidateDestinationRule: duplicate subsets", "{host: a, subsets: [{name: v1}, {name: v1}]}", Error("defined twice")),
        s("validateSubsetName: upper case is valid", "{host: a, subsets: [{name: Canary}]}", Accept),
        s("validateSubsetName", "{host: a, subsets: [{name: v_1}]}", Error("not a valid name")),
        s("labels.Instance.Validate: subset labels", "{host: a, subsets: [{name: v1, labels: {version: \"v 1\"}}]}", Error("not a valid label value")),
        s("validateExportTo", "{host: a, exportTo: [\"*\", ns1]}", Error("list nothing else")),
        s("validateExportTo: workloadSelector rules stay home", "{host: a, workloadSelector: {matchLabels: {app: gw}}, exportTo: [\"*\"]}", Error("own namespace only")),
        s("validateWorkloadSelector: no labels (warning)", "{host: a, workloadSelector: {}}", Warn("no labels")),
        s("validateWorkloadSelector: wildcards", "{host: a, workloadSelector: {matchLabels: {app: \"*\"}}}", Error("wildcards")),
        d("validateTrafficPolicy: a field", "{}", Error("at least one field")),
        d("validateTrafficPolicy: tunnel with proxyProtocol", "{tunnel: {protocol: CONNECT, targetHost: a.com, targetPort: 80}, proxyProtocol: {version: V1}}", Error("cannot be set together")),
        d("validateTunnelSettings: protocol", "{tunnel: {protocol: GET, targetHost: a.com, targetPort: 80}}", Error("CONNECT or POST")),
        d("schema: oneof simple/consistentHash", "{loadBalancer: {simple: ROUND_ROBIN, consistentHash: {httpHeaderName: x}}}", Error("not both")),
        d("validateLoadBalancer: consistentHash without a key is accepted", "{loadBalancer: {consistentHash: {}}}", Accept),
        d("schema: enum values", "{loadBalancer: {simple: ROUND_ROBBIN}}", Error("did you mean")),
        d("validateLoadBalancer: cookie name", "{loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}}", Error("cookie name is required")),
        d("validateLoadBalancer: cookie attributes", "{loadBalancer: {consistentHash: {httpCookie: {name: c, attributes: [{name: a}, {name: a}]}}}}", Error("listed twice")),
        d("validateLoadBalancer: minimumRingSize deprecated (warning)", "{loadBalancer: {consistentHash: {httpHeaderName: x, minimumRingSize: 1024}}}", Warn("deprecated")),
        d("validateLoadBalancer: minimumRingSize with ringHash", "{loadBalancer: {consistentHash: {httpHeaderName: x, minimumRingSize: 1024, ringHash: {minimumRingSize: 1024}}}}", Error("cannot be combined")),
        d("validateLoadBalancer: maglev tableSize prime", "{loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 1000}}}}", Error("not a prime")),
        d("validateLoadBalancer: maglev tableSize", "{loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 65537}}}}", Accept),
        d("validateLoadBalancer: locality and zone-aware", "{loadBalancer: {localityLbSetting: {enabled: true}, zoneAwareLbSetting: {enabled: true}}, outlierDetection: {}}", Error("not both")),
        d("ValidateLocalityLbSetting: distribute and failover", "{loadBalancer: {localityLbSetting: {distribute: [{from: r1, to: {r2: 100}}], failover: [{from: r1, to: r2}]}}, outlierDetection: {}}", Error("distribute or failover")),
        d("ValidateLocalityLbSetting: weights add up to 100", "{loadBalancer: {localityLbSetting: {distribute: [{from: r1/z1/*, to: {r1/z1/*: 70, r1/z2/*: 20}}]}}}", Error("add up to 90")),
        d("ValidateLocalityLbSetting: weights 1-100", "{loadBalancer: {localityLbSetting: {distribute: [{from: r1, to: {r1: 0, r2: 100}}]}}}", Error("between 1 and 100")),
        d("validateLocalities: * at the end", "{loadBalancer: {localityLbSetting: {distribute: [{from: \"r1/*/z\", to: {r1: 100}}]}}}", Error("at the end")),
        d("validateLocalities: overlap", "{loadBalancer: {localityLbSetting: {distribute: [{from: r1, to: {r1: 100}}, {from: r1/z1, to: {r1: 100}}]}}}", Error("overlaps")),
        d("ValidateLocalityLbSetting: distribute", "{loadBalancer: {localityLbSetting: {distribute: [{from: r1/z1/*, to: {r1/z1/*: 80, r1/z2/*: 20}}]}}}", Accept),
        d("ValidateLocalityLbSetting: failover regions differ", "{loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r1}]}}, outlierDetection: {consecutive5xxErrors: 5}}", Error("different regions")),
        d("ValidateLocalityLbSetting: failover names regions", "{loadBalancer: {localityLbSetting: {failover: [{from: r1/z1, to: r2}]}}, outlierDetection: {consecutive5xxErrors: 5}}", Error("regions only")),
        d("ValidateLocalityLbSetting: failover with topology priority", "{loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r2}], failoverPriority: [topology.kubernetes.io/zone]}}, outlierDetection: {consecutive5xxErrors: 5}}", Error("topology label")),
        d("ValidateLocalityLbSetting: failover without outlier detection (warning)", "{loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r2}]}}}", Warn("failover needs outlierDetection")),
        d("ValidateZoneAwareLbSetting: priority labels", "{loadBalancer: {zoneAwareLbSetting: {failoverPriority: [topology.kubernetes.io/region]}}, outlierDetection: {consecutive5xxErrors: 5}}", Error("cannot be a failover priority")),
        d("ValidateZoneAwareLbSetting", "{loadBalancer: {zoneAwareLbSetting: {enabled: true, failover: [{from: r1, to: r2}], minClusterSize: 3}}, outlierDetection: {consecutive5xxErrors: 5}}", Accept),
        d("validateLoadBalancer: warmup duration", "{loadBalancer: {warmup: {minimumPercent: 10}}}", Error("needs a duration")),
        d("validateLoadBalancer: warmup aggression", "{loadBalancer: {warmup: {duration: 60s, aggression: 0}}}", Error("above 0")),
        d("validateOutlierDetection: percentages", "{outlierDetection: {maxEjectionPercent: 150}}", Error("between 0 and 100")),
        d("validateOutlierDetection: local-origin failures", "{outlierDetection: {consecutiveLocalOriginFailures: 3}}", Error("splitExternalLocalOriginErrors")),
        d("validateOutlierDetection: consecutiveErrors deprecated (warning)", "{outlierDetection: {consecutiveErrors: 3}}", Warn("deprecated")),
        d("validateOutlierDetection: durations", "{outlierDetection: {interval: 0s}}", Error("at least 1ms")),
        d("istio/api 1.31: outlierDetectionHttpErrorCodes", "{outlierDetection: {outlierDetectionHttpErrorCodes: [500, 503]}}", Accept),
        d("validateConnectionPool: a field", "{connectionPool: {}}", Error("needs tcp or http")),
        d("validateConnectionPool: negative", "{connectionPool: {tcp: {maxConnections: -1}}}", Error("must not be negative")),
        d("validateConnectionPool: durations", "{connectionPool: {tcp: {connectTimeout: 500us}}}", Error("at least 1ms")),
        d("validateConnectionPool: tcp idleTimeout 0s turns it off", "{connectionPool: {tcp: {idleTimeout: 0s}}}", Accept),
        d("validateConnectionPool: http idleTimeout", "{connectionPool: {http: {idleTimeout: 0s}}}", Error("at least 1ms")),
        d("validateConnectionPool: UPGRADE and useClientProtocol", "{connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}", Error("useClientProtocol")),
        d("validateConnectionPool: http2KeepAlive needs both", "{connectionPool: {http: {http2KeepAlive: {interval: 30s}}}}", Error("needs timeout")),
        d("istio/api 1.31: http2KeepAlive", "{connectionPool: {http: {http2KeepAlive: {interval: 30s, timeout: 5s}}}}", Accept),
        d("validateConnectionPool: keepalive durations", "{connectionPool: {tcp: {tcpKeepalive: {time: 0s}}}}", Error("at least 1ms")),
        d("ValidateTLS: MUTUAL needs a certificate", "{tls: {mode: MUTUAL}}", Error("clientCertificate")),
        d("ValidateTLS: credentialName or files", "{tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca}}", Error("not both")),
        d("ValidateTLS: DISABLE ignores the rest", "{tls: {mode: DISABLE, credentialName: c, caCertificates: /ca}}", Accept),
        d("ValidateTLS: insecureSkipVerify with a CA", "{tls: {mode: SIMPLE, caCertificates: /ca, insecureSkipVerify: true}}", Error("insecureSkipVerify")),
        d("ValidateTLS: insecureSkipVerify with SANs", "{tls: {mode: SIMPLE, subjectAltNames: [a.com], insecureSkipVerify: true}}", Error("insecureSkipVerify")),
        d("ValidateTLS: insecureSkipVerify", "{tls: {mode: SIMPLE, insecureSkipVerify: true}}", Accept),
        d("ValidateTLS: configmap:// in this namespace", "{tls: {mode: SIMPLE, credentialName: \"configmap://other/ca\"}}", Error("in this namespace")),
        d("validatePortTrafficPolicies: port", "{portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}", Error("port is required")),
        d("validatePortTrafficPolicies: a field", "{portLevelSettings: [{port: {number: 80}}]}", Error("at least one of")),
        d("validatePortTrafficPolicies: repeated ports are accepted", "{portLevelSettings: [{port: {number: 80}, loadBalancer: {simple: RANDOM}}, {port: {number: 80}, loadBalancer: {simple: ROUND_ROBIN}}]}", Accept),
        d("istio/api 1.31: retryBudget", "{retryBudget: {percent: 20, minRetryConcurrency: 3, budgetInterval: 1s}}", Accept),
        d("sluice: tunnel is refused rather than ignored", "{tunnel: {protocol: CONNECT, targetHost: a.com, targetPort: 80}}", Error("SLU0009")),
    ];
    check(&rows);
}

#[test]
fn service_entry_rules() {
    let s = |rule, spec: &str, want| row(rule, "ServiceEntry", spec.to_string(), want);
    const P80: &str = "ports: [{number: 80, name: http, protocol: HTTP}]";
    let e = |rule, rest: &str, want| {
        row(
            rule,
            "ServiceEntry",
            format!("{{hosts: [a.example.com], {P80}, {rest}}}"),
            want,
        )
    };
    let rows = vec![
        e("ValidateServiceEntry", "resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {http: 8080}}]", Accept),
        s("ValidateServiceEntry: hosts", &format!("{{{P80}}}"), Error("hosts is required")),
        s("ValidateServiceEntry: * host", &format!("{{hosts: [\"*\"], {P80}}}"), Error("cannot be \"*\"")),
        s("ValidatePartialWildCard (warning)", &format!("{{hosts: [\"*foo.com\"], {P80}, resolution: STATIC}}"), Warn("partial wildcard")),
        s("ValidateServiceEntry: ports", "{hosts: [a.com]}", Error("ports is required")),
        s("ValidatePortName", "{hosts: [a.com], ports: [{number: 80, protocol: HTTP}]}", Error("not a valid port name")),
        s("ValidateServiceEntry: port numbers unique", "{hosts: [a.com], ports: [{number: 80, name: a, protocol: HTTP}, {number: 80, name: b, protocol: HTTP}]}", Error("listed twice")),
        s("ValidateProtocol", "{hosts: [a.com], ports: [{number: 80, name: a, protocol: SMTP}]}", Error("not one Istio knows")),
        s("ValidateServiceEntry: TCP ports without addresses (warning)", "{hosts: [a.com], ports: [{number: 5432, name: pg, protocol: TCP}]}", Warn("needs addresses")),
        e("validateWorkloadEntry: STATIC takes IPs", "resolution: STATIC, endpoints: [{address: backend.local}]", Error("not an IP address")),
        e("validateWorkloadEntry: port names", "resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {grpc: 9000}}]", Error("not one of the ServiceEntry's ports")),
        e("validateWorkloadEntry: unix sockets take no ports", "resolution: STATIC, endpoints: [{address: \"unix:///var/run/a.sock\", ports: {http: 1}}]", Error("takes no ports")),
        e("ValidateServiceEntry: NONE takes no endpoints", "endpoints: [{address: 10.0.0.1}]", Error("takes no endpoints")),
        e("ValidateServiceEntry: workloadSelector with NONE (warning)", "workloadSelector: {labels: {app: a}}", Warn("no effect with resolution NONE")),
        e("ValidateServiceEntry: workloadSelector or endpoints", "resolution: STATIC, workloadSelector: {labels: {app: a}}, endpoints: [{address: 10.0.0.1}]", Error("not both")),
        e("ValidateAlphaWorkloadSelector: no labels (warning)", "resolution: STATIC, workloadSelector: {}", Warn("no labels")),
        s("ValidateServiceEntry: DNS without endpoints needs exact hosts", &format!("{{hosts: [\"*.a.com\"], {P80}, resolution: DNS}}"), Error("without wildcards")),
        e("ValidateServiceEntry: DNS endpoints", "resolution: DNS, endpoints: [{address: backend.local}]", Accept),
        e("ValidateServiceEntry: DNS_ROUND_ROBIN endpoints", "resolution: DNS_ROUND_ROBIN, endpoints: [{address: a.local}, {address: b.local}]", Error("at most one endpoint")),
        s("ValidateServiceEntry: several hosts on TCP", "{hosts: [a.com, b.com], ports: [{number: 5432, name: pg, protocol: TCP}], resolution: DNS}", Error("several hosts")),
        s("ValidateServiceEntry: CIDR with DNS", &format!("{{hosts: [a.com], addresses: [10.0.0.0/24], {P80}, resolution: DNS}}"), Error("CIDR")),
        s("ValidateIPSubnet: addresses", &format!("{{hosts: [a.com], addresses: [10.0.0.300], {P80}}}"), Error("not a valid IP")),
        s("ValidateServiceEntry: DYNAMIC_DNS wildcard hosts", &format!("{{hosts: [a.com], {P80}, resolution: DYNAMIC_DNS}}"), Error("wildcard hosts")),
        e("validateExportTo: ~ for ServiceEntries", "exportTo: [\"~\"]", Accept),
        e("validateExportTo: ~ alone", "exportTo: [\"~\", \".\"]", Error("exports to no one")),
        e("schema: enum values", "resolution: STAITC", Error("did you mean \"STATIC\"")),
    ];
    check(&rows);
}

#[test]
fn workload_entry_rules() {
    let w = |rule, spec: &str, want| row(rule, "WorkloadEntry", spec.to_string(), want);
    let rows = vec![
        w(
            "validateWorkloadEntry",
            "{address: 10.0.0.1, ports: {http: 8080}, labels: {app: a}}",
            Accept,
        ),
        w(
            "validateWorkloadEntry: host names",
            "{address: backend.example.com}",
            Accept,
        ),
        w(
            "validateWorkloadEntry: address",
            "{labels: {app: a}}",
            Error("address is required"),
        ),
        w(
            "validateWorkloadEntry: no address on a network (warning)",
            "{network: n1}",
            Warn("address is unset"),
        ),
        w(
            "validateWorkloadEntry: address is a name or IP",
            "{address: \"not a host\"}",
            Error("not a host name"),
        ),
        w(
            "validateWorkloadEntry: ports",
            "{address: 10.0.0.1, ports: {http: 0}}",
            Error("out of range"),
        ),
        w(
            "labels.Instance.Validate",
            "{address: 10.0.0.1, labels: {\"-bad\": a}}",
            Error("not a valid label key"),
        ),
    ];
    check(&rows);
}

/// Codes of the warnings for a VirtualService with one http route.
fn warning_codes(route: &str) -> Vec<&'static str> {
    diagnostics("VirtualService", "{name: t}", &vs(route))
        .iter()
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
        // Retry conditions Istio accepts that sluice does not act on.
        ("{retries: {attempts: 2, retryOn: \"connect-failure,envoy-ratelimited\"}, route: [{destination: {host: a}}]}", &["SLU0015"]),
        // JWT claims are headers only after Istio's JWT filter, which sluice does not have.
        ("{match: [{headers: {\"@request.auth.claims[group]\": {exact: admin}}}], route: [{destination: {host: a}}]}", &["SLU0015"]),
    ];
    for (route, want) in rows {
        assert_eq!(&warning_codes(route), want, "{route}");
    }
}

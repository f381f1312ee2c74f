//! Istio's own per-object validation (what its admission webhook refuses or warns about, Istio
//! 1.31 `pkg/config/validation`), written from Istio's rules. Cross-object checks live in
//! `sluice-compile` (`analyze`). Errors where Istio errors, warnings where Istio warns; where
//! sluice refuses more, the message says it is sluice's limit.
use crate::diag::{codes, Diagnostic, Severity};
use crate::store::{Body, Object};
use crate::yaml::Seg;
use sluice_api::istio::{Percent, StringMatch};
use sluice_api::meta::Labels;
use std::collections::HashSet;

mod destination_rule;
mod gateway;
pub mod gateway_api;
mod ingress;
pub mod names;
mod service_entry;
mod virtual_service;

pub use gateway::{GATEWAY_PROTOCOLS, SUPPORTED_CIPHERS};
pub use names::{host_error, is_dns1123_label};
pub use virtual_service::GRPC_STATUS;

/// A path under construction: `P::root().k("spec").i(0)`.
#[derive(Clone, Default)]
pub struct P(pub Vec<Seg>);

impl P {
    pub fn spec() -> P {
        P(vec![Seg::Key("spec".into())])
    }
    pub fn k(&self, key: &str) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.into()));
        P(v)
    }
    pub fn i(&self, index: usize) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Index(index));
        P(v)
    }
}

/// Collects diagnostics about one object, each pointed at a field.
pub struct Report<'a> {
    pub object: &'a Object,
    pub out: &'a mut Vec<Diagnostic>,
}

impl Report<'_> {
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &P,
        message: String,
        help: Option<String>,
    ) {
        let mut d = Diagnostic::new(severity, code, message).at(self.object.origin_at(&path.0));
        d.help = help;
        d.resource = Some(self.object.resource());
        d.field = Some(crate::yaml::path_to_string(&path.0));
        self.out.push(d);
    }
    /// `message` after the field's path, as schema errors read.
    fn at_field(path: &P, message: impl Into<String>) -> String {
        format!(
            "{}: {}",
            crate::yaml::path_to_string(&path.0),
            message.into()
        )
    }
    fn err(&mut self, path: &P, message: impl Into<String>) {
        let m = Self::at_field(path, message);
        self.push(
            Severity::Error,
            codes::SCHEMA_VALIDATION_ERROR,
            path,
            m,
            None,
        );
    }
    fn err_help(&mut self, path: &P, message: impl Into<String>, help: impl Into<String>) {
        let (m, h) = (Self::at_field(path, message), Some(help.into()));
        self.push(Severity::Error, codes::SCHEMA_VALIDATION_ERROR, path, m, h);
    }
    fn warn(&mut self, path: &P, message: impl Into<String>, help: Option<String>) {
        let m = Self::at_field(path, message);
        self.push(Severity::Warning, codes::SCHEMA_WARNING, path, m, help);
    }
    /// An error when `check` found one.
    fn check(&mut self, path: &P, check: Result<(), String>) {
        if let Err(e) = check {
            self.err(path, e);
        }
    }
}

/// Validates every object on its own.
pub fn validate_object(object: &Object, out: &mut Vec<Diagnostic>) {
    let mut r = Report { object, out };
    let s = P::spec();
    if matches!(
        object.body,
        Body::Gateway(_)
            | Body::VirtualService(_)
            | Body::DestinationRule(_)
            | Body::ServiceEntry(_)
            | Body::WorkloadEntry(_)
    ) {
        annotations(&mut r);
    }
    match &object.body {
        Body::Gateway(g) => gateway::gateway(&mut r, &s, g),
        Body::VirtualService(vs) => virtual_service::virtual_service(&mut r, &s, vs),
        Body::DestinationRule(dr) => destination_rule::destination_rule(&mut r, &s, dr),
        Body::ServiceEntry(se) => service_entry::service_entry(&mut r, &s, se),
        Body::WorkloadEntry(we) => service_entry::workload_entry(&mut r, &s, we, None, true),
        Body::Secret(sec) => service_entry::secret(&mut r, sec),
        Body::Service(svc) => {
            for (i, p) in svc.ports.iter().enumerate() {
                if !matches!(p.port, Some(1..=65535)) {
                    r.err(
                        &s.k("ports").i(i).k("port"),
                        "port must be between 1 and 65535",
                    );
                }
            }
        }
        Body::EndpointSlice(_) | Body::Namespace | Body::Pod | Body::GatewayClass(_) => {}
        Body::KubeGateway(g) => gateway_api::gateway(&mut r, &s, g),
        Body::HttpRoute(route) => gateway_api::http_route(&mut r, &s, route),
        Body::TlsRoute(route) => gateway_api::tls_route(&mut r, &s, route),
        Body::TcpRoute(route) => {
            gateway_api::l4_route(&mut r, &s, &route.parent_refs, &route.rules)
        }
        Body::GrpcRoute(route) => gateway_api::grpc_route(&mut r, &s, route),
        Body::ListenerSet(ls) => gateway_api::listener_set(&mut r, &s, ls),
        Body::BackendTlsPolicy(policy) => gateway_api::backend_tls_policy(&mut r, &s, policy),
        Body::Ingress(ingress) => ingress::ingress(&mut r, &s, ingress),
        Body::ReferenceGrant(_) | Body::ConfigMap(_) | Body::IngressClass(_) => {}
    }
}

/// Istio's `validateMetadata`: annotations the webhook refuses on networking objects.
fn annotations(r: &mut Report) {
    let refused: Vec<String> = r
        .object
        .meta
        .annotations
        .keys()
        .filter(|k| {
            matches!(
                k.as_str(),
                "istio.io/dry-run"
                    | "internal.istio.io/webhook-always-reject"
                    | "internal.istio.io/parents"
                    | "internal.istio.io/parent-namespace"
            )
        })
        .cloned()
        .collect();
    for k in refused {
        let path = P(vec![
            Seg::Key("metadata".into()),
            Seg::Key("annotations".into()),
            Seg::Key(k.clone()),
        ]);
        let why = if k == "istio.io/dry-run" {
            "only AuthorizationPolicies take it"
        } else {
            "it is Istio's internal annotation, not for users"
        };
        r.err_help(
            &path,
            format!("annotation \"{k}\" is refused: {why}"),
            "remove the annotation",
        );
    }
}

// ---------------------------------------------------------------- rules shared by the kinds

/// Istio's `ValidatePort`.
fn port_number(r: &mut Report, path: &P, n: Option<u32>, required: bool) {
    match n {
        Some(1..=65535) => {}
        Some(n) => r.err(path, format!("port number {n} is out of range 1-65535")),
        None if required => r.err(path, "port number is required"),
        None => {}
    }
}

/// Istio's `validatePercentage`: 0, or between 0.0001 and 100.
fn percentage(r: &mut Report, path: &P, p: &Option<Percent>) {
    if let Some(v) = p.as_ref().and_then(|p| p.value) {
        if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
            r.err(
                &path.k("value"),
                format!("percentage {v} must be 0 or between 0.0001 and 100"),
            );
        }
    }
}

/// Istio's `ValidateDuration`: at least 1ms, in whole milliseconds.
fn duration(r: &mut Report, path: &P, d: Option<sluice_api::Duration>) {
    let Some(d) = d else { return };
    if d.0 < std::time::Duration::from_millis(1) {
        r.err_help(
            path,
            "duration must be at least 1ms",
            "leave the field out to use the default",
        );
    } else if d.0.subsec_nanos() % 1_000_000 != 0 {
        r.err(
            path,
            "durations are supported to millisecond precision only",
        );
    }
}

/// Istio's `labels.Instance.Validate`: Kubernetes label keys and values.
fn labels(r: &mut Report, path: &P, labels: &Labels) {
    for (k, v) in labels {
        if let Err(e) = names::label_key(k) {
            r.err(path, e);
        }
        if !names::is_label_value(v) {
            r.err(&path.k(k), format!("\"{v}\" is not a valid label value"));
        }
    }
}

pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Compiles an Istio (RE2) regex as a full match. Rust's regex crate refuses what RE2 refuses
/// (look-around, back-references), so the same patterns are valid in both.
pub fn full_match_regex(re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| {
        // The crate's message is multi-line with its own caret; keep its last line.
        e.to_string()
            .lines()
            .last()
            .unwrap_or("invalid regex")
            .trim()
            .trim_start_matches("error: ")
            .to_string()
    })
}

/// Istio's `validateStringRegexp`: at most 1024 characters, and RE2 syntax.
fn regex(r: &mut Report, path: &P, re: &str) {
    if re.len() > 1024 {
        r.err(path, "regex is too large (at most 1024 characters)");
    } else if let Err(e) = full_match_regex(re) {
        r.err_help(path, format!("regex \"{re}\" does not compile: {e}"), "Istio uses RE2 syntax (no look-around or back-references); escape literal parentheses as \\(");
    }
}

/// Istio's `validateStringMatch` (`allow_empty_prefix` for `uri`, whose empty prefix Envoy
/// takes): one of exact, prefix, regex (none matches presence); no empty regex.
fn string_match(r: &mut Report, path: &P, m: &StringMatch, allow_empty_prefix: bool) {
    let set = [&m.exact, &m.prefix, &m.regex]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if set > 1 {
        r.err_help(
            path,
            "a StringMatch takes one of exact, prefix or regex",
            "write e.g. `{prefix: /api}`",
        );
    }
    if m.prefix.as_deref() == Some("") && !allow_empty_prefix {
        r.err(&path.k("prefix"), "prefix must not be empty");
    }
    match m.regex.as_deref() {
        Some("") => r.err(&path.k("regex"), "regex must not be empty"),
        Some(re) => regex(r, &path.k("regex"), re),
        None => {}
    }
}

/// Istio's `validateExportTo`: `.`, `*` or namespace names, no duplicates, `*` alone; `~` (no
/// one) only for ServiceEntries, and alone.
fn export_to(r: &mut Report, path: &P, export_to: &[String], service_entry: bool) {
    let namespace = r.object.namespace.clone();
    let mut seen = HashSet::new();
    for (i, e) in export_to.iter().enumerate() {
        let key = if e == "." { namespace.as_str() } else { e };
        if !seen.insert(key) {
            r.err(
                &path.i(i),
                format!("\"{e}\" is listed twice (\".\" is this namespace, {namespace})"),
            );
        } else if !(e == "." || e == "*" || (e == "~" && service_entry) || is_dns1123_label(e)) {
            r.err_help(
                &path.i(i),
                format!("\"{e}\" is not a namespace"),
                "use \".\" (this namespace), \"*\" (every namespace) or a namespace name",
            );
        }
    }
    if export_to.len() > 1 {
        if seen.contains("*") {
            r.err(
                path,
                "\"*\" exports to every namespace; list nothing else with it",
            );
        }
        if seen.contains("~") {
            r.err(path, "\"~\" exports to no one; list nothing else with it");
        }
    }
}

/// Istio's `validateWorkloadSelector`: no empty keys, no wildcards; no labels is a warning.
fn selector_labels(r: &mut Report, path: &P, labels: &Labels, empty_warning: &str) {
    for (k, v) in labels {
        if k.is_empty() {
            r.err(path, "a selector label key must not be empty");
        }
        if k.contains('*') || v.contains('*') {
            r.err(
                path,
                format!("wildcards are not allowed in a selector (\"{k}={v}\")"),
            );
        }
    }
    if labels.is_empty() {
        r.warn(path, empty_warning, None);
    }
}

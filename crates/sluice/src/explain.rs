//! `sluice explain` and the admin's `/explain`: one request described, checked and explained
//! the same way for both; the text form for people (the JSON form is the serialised
//! `Explanation`).
use sluice_compile::explain::Explanation;
use sluice_compile::Snapshot;

/// A request to explain, as the command line or a query string gives it.
pub struct Question {
    /// http, https, tcp or tls.
    pub protocol: String,
    /// The Gateway (service) port.
    pub port: u32,
    pub host: Option<String>,
    pub sni: Option<String>,
    pub path: String,
    pub method: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
}

impl Question {
    /// Checks the protocol and reads `name: value` headers.
    pub fn new(
        protocol: &str,
        port: u32,
        host: Option<String>,
        sni: Option<String>,
        path: String,
        method: String,
        headers: &[String],
    ) -> Result<Question, String> {
        // The port decides what the listener speaks; the protocol guards against asking the
        // wrong question.
        if !matches!(protocol, "http" | "https" | "tcp" | "tls") {
            return Err(format!(
                "protocol \"{protocol}\": expected http, https, tcp or tls"
            ));
        }
        let headers = headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
                None => Err(format!("header \"{h}\": expected `name: value`")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Question {
            protocol: protocol.to_string(),
            port,
            host,
            sni,
            path,
            method,
            headers,
        })
    }

    pub fn explain(&self, snapshot: &Snapshot) -> Explanation {
        sluice_compile::explain::explain(
            snapshot,
            &sluice_compile::explain::Request {
                port: self.port,
                // TCP and TLS connections have no Host.
                host: self
                    .host
                    .as_deref()
                    .filter(|_| matches!(self.protocol.as_str(), "http" | "https")),
                sni: self.sni.as_deref(),
                path: &self.path,
                method: &self.method,
                headers: &self.headers,
            },
        )
    }
}

pub fn text(e: &Explanation) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:<14}{v}\n"));
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    line(&mut out, "listener", &or_dash(&e.listener));
    if let Some(server) = &e.server {
        line(&mut out, "tls server", server);
    }
    line(&mut out, "route config", &or_dash(&e.route_config));
    line(&mut out, "virtual host", &or_dash(&e.virtual_host));
    let route = e.route.as_ref().map(|r| {
        format!(
            "{}{} {}[{}]{}",
            match r.kind {
                "VirtualService" => String::new(),
                kind => format!("{kind} "),
            },
            r.virtual_service,
            if r.kind == "VirtualService" {
                r.list
            } else {
                "rules"
            },
            r.index,
            r.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )
    });
    line(&mut out, "route", &or_dash(&route));
    line(&mut out, "action", e.action);
    let total: u32 = e.clusters.iter().map(|c| c.weight).sum();
    for c in &e.clusters {
        line(
            &mut out,
            "cluster",
            &format!(
                "{} ({}%)",
                c.name,
                (c.weight * 100).checked_div(total).unwrap_or(0)
            ),
        );
        for p in &c.traffic_policy {
            line(&mut out, "  policy", p);
        }
    }
    if !e.endpoints.is_empty() {
        line(&mut out, "endpoints", &e.endpoints.join(", "));
    }
    if let Some(s) = e.status {
        line(&mut out, "status", &s.to_string());
    }
    if let Some(l) = &e.location {
        line(&mut out, "location", l);
    }
    if let Some(err) = e.error {
        line(&mut out, "error", err);
    }
    if let Some(p) = &e.policy {
        policy_lines(&mut out, p, line);
    }
    out
}

fn policy_lines(
    out: &mut String,
    p: &sluice_compile::explain::PolicyView,
    line: impl Fn(&mut String, &str, &str),
) {
    line(out, "upstream path", &p.upstream_path);
    if let Some(a) = &p.upstream_authority {
        line(out, "upstream host", a);
    }
    line(out, "timeout", p.timeout.as_deref().unwrap_or("none"));
    let r = &p.retries;
    let mut retries = format!("{} on {}", r.attempts, r.retry_on.join(","));
    if !r.retriable_status_codes.is_empty() {
        let codes: Vec<String> = r
            .retriable_status_codes
            .iter()
            .map(u16::to_string)
            .collect();
        retries.push_str(&format!(" (codes {})", codes.join(",")));
    }
    if let Some(t) = &r.per_try_timeout {
        retries.push_str(&format!(", {t} per try"));
    }
    line(out, "retries", &retries);
    for (label, ops) in [
        ("request hdrs", &p.request_headers),
        ("response hdrs", &p.response_headers),
    ] {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(ops.set.iter().map(|(k, v)| format!("set {k}: {v}")));
        parts.extend(ops.add.iter().map(|(k, v)| format!("add {k}: {v}")));
        parts.extend(ops.remove.iter().map(|k| format!("remove {k}")));
        if !parts.is_empty() {
            line(out, label, &parts.join("; "));
        }
    }
    for m in &p.mirrors {
        line(out, "mirror", &format!("{} ({}%)", m.cluster, m.percentage));
    }
    if let Some(f) = &p.fault {
        if let Some(d) = &f.delay {
            line(
                out,
                "fault delay",
                &format!("{d} ({}%)", f.delay_percentage),
            );
        }
        if let Some(a) = &f.abort {
            line(
                out,
                "fault abort",
                &format!("{a} ({}%)", f.abort_percentage),
            );
        }
    }
    if p.cors {
        line(out, "cors", "yes");
    }
}

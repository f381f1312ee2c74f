//! What one answer to a probe means, independent of the API that produced it: the outcome, the
//! endpoints each share of traffic reaches (cluster names differ between the APIs: a subset
//! cluster `outbound|8000|v1|demo…` and a generated Service `demo-v1` reach the same
//! endpoints), redirects, local replies, and what the backend would receive.
use sluice_compile::explain::{ClusterShare, Explanation};
use std::collections::HashMap;

/// Generated Service host → `(host, subset)` of the source destination it stands for.
pub type Aliases = HashMap<String, (String, String)>;

/// What a share of traffic reaches: its endpoints; without endpoints, the service (and subset)
/// it stands for.
fn reaches(c: &ClusterShare, aliases: &Aliases) -> String {
    if !c.endpoints.is_empty() {
        let mut eps = c.endpoints.clone();
        eps.sort();
        return format!("[{}]", eps.join(", "));
    }
    let parts: Vec<&str> = c.name.split('|').collect();
    let (port, subset, host) = match parts.as_slice() {
        ["outbound", port, subset, host] => (*port, *subset, *host),
        _ => return format!("no endpoints ({})", c.name),
    };
    let (host, subset) = match aliases.get(host) {
        Some((h, s)) if subset.is_empty() => (h.as_str(), s.as_str()),
        _ => (host, subset),
    };
    let subset = if subset.is_empty() {
        String::new()
    } else {
        format!(" subset {subset}")
    };
    format!("no endpoints ({host}:{port}{subset})")
}

/// The comparable part of an explanation, as one line.
pub fn outcome(e: &Explanation, aliases: &Aliases) -> String {
    // `tls_redirect` (Istio's httpsRedirect) is a redirect like any other; a missing virtual
    // host and a missing route are both a 404.
    let action = match e.action {
        "tls_redirect" => "redirect",
        "no_virtual_host" => "no_route",
        a => a,
    };
    let mut s = action.to_string();
    if let Some(status) = e.status {
        s.push_str(&format!(" {status}"));
    }
    if let Some(l) = &e.location {
        s.push_str(&format!(" location={l}"));
    }
    if let Some(err) = e.error.filter(|err| *err != e.action && *err != action) {
        s.push_str(&format!(" ({err})"));
    }
    if action == "forward" {
        let total: u64 = e.clusters.iter().map(|c| u64::from(c.weight)).sum();
        let mut shares: Vec<(String, f64)> = e
            .clusters
            .iter()
            .filter(|c| c.weight > 0)
            .map(|c| {
                let pct = if total == 0 {
                    0.0
                } else {
                    100.0 * f64::from(c.weight) / total as f64
                };
                (reaches(c, aliases), pct)
            })
            .collect();
        shares.sort_by(|a, b| a.0.cmp(&b.0));
        let shares: Vec<String> = shares
            .iter()
            .map(|(r, pct)| format!("{pct:.2}% → {r}"))
            .collect();
        s.push_str(&format!(" {}", shares.join(" + ")));
        if let Some(p) = &e.policy {
            s.push_str(&format!(" path={}", p.upstream_path));
            if let Some(a) = &p.upstream_authority {
                s.push_str(&format!(" authority={a}"));
            }
            if let Some(t) = &p.timeout {
                s.push_str(&format!(" timeout={t}"));
            }
            for (what, ops) in [
                ("request", &p.request_headers),
                ("response", &p.response_headers),
            ] {
                let mut parts: Vec<String> = ops
                    .set
                    .iter()
                    .map(|(k, v)| format!("set {k}={v}"))
                    .collect();
                parts.extend(ops.add.iter().map(|(k, v)| format!("add {k}={v}")));
                parts.extend(ops.remove.iter().map(|k| format!("remove {k}")));
                if !parts.is_empty() {
                    parts.sort();
                    s.push_str(&format!(" {what}-headers({})", parts.join(", ")));
                }
            }
        }
    }
    s
}

/// Which route answered, for the report (not compared).
pub fn route_name(e: &Explanation) -> String {
    match &e.route {
        Some(r) => {
            let list = if r.kind == "VirtualService" {
                r.list
            } else {
                "rules"
            };
            let mut s = format!("{} {} {list}[{}]", r.kind, r.virtual_service, r.index);
            if let Some(n) = &r.name {
                s.push_str(&format!(" {n}"));
            }
            s
        }
        None => "no route".into(),
    }
}

//! The admin port's text pages: `/clusters` in the spirit of Envoy's (one
//! `cluster::endpoint::field::value` line per fact) and `/routes` (tables → virtual hosts →
//! routes), and the runtime health `/config_dump` adds to the snapshot's endpoints.
use serde_json::Value;
use sluice_proxy::inspect::ClusterView;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Envoy's health flag for an endpoint: healthy, or ejected by outlier detection.
fn health(ejected: bool) -> &'static str {
    if ejected {
        "/failed_outlier_check"
    } else {
        "healthy"
    }
}

/// Cluster by cluster: circuit breakers, counters, requests so far; then per endpoint its
/// requests in flight, health, weight, priority and locality. Runtime lines appear only where
/// the data plane's state is at hand.
pub fn clusters(views: &[ClusterView], counts: &HashMap<String, u64>) -> String {
    let mut out = String::new();
    for c in views {
        let n = &c.name;
        for (limit, v) in [
            ("max_connections", c.max_connections),
            ("max_pending_requests", c.max_pending_requests),
            ("max_requests", c.max_requests),
            ("max_retries", c.max_retries),
        ] {
            let _ = writeln!(out, "{n}::default_priority::{limit}::{v}");
        }
        if let Some(k) = c.counters {
            let _ = writeln!(out, "{n}::cx_active::{}", k.connections);
            let _ = writeln!(out, "{n}::rq_pending_active::{}", k.pending);
            let _ = writeln!(out, "{n}::outlier_ejected::{}", k.ejected);
        }
        let _ = writeln!(
            out,
            "{n}::rq_total::{}",
            counts.get(n).copied().unwrap_or(0)
        );
        for e in &c.endpoints {
            let a = &e.address;
            if let Some(r) = e.runtime {
                let _ = writeln!(out, "{n}::{a}::rq_active::{}", r.in_flight);
                let _ = writeln!(out, "{n}::{a}::health_flags::{}", health(r.ejected));
            }
            let _ = writeln!(out, "{n}::{a}::weight::{}", e.weight);
            let _ = writeln!(out, "{n}::{a}::priority::{}", e.priority);
            let mut parts = e.locality.splitn(3, '/');
            for field in ["region", "zone", "sub_zone"] {
                let _ = writeln!(out, "{n}::{a}::{field}::{}", parts.next().unwrap_or(""));
            }
        }
    }
    out
}

/// Adds `health` and `in_flight` to each endpoint of `/config_dump`'s clusters where the data
/// plane's state is at hand.
pub fn add_health(dump: &mut Value, views: &[ClusterView]) {
    let Some(clusters) = dump["clusters"].as_array_mut() else {
        return;
    };
    for (cluster, view) in clusters.iter_mut().zip(views) {
        // Both lists are sorted by name; a reload between the two reads can shift them.
        if cluster["name"] != view.name.as_str() {
            return;
        }
        let Some(endpoints) = cluster["endpoints"].as_array_mut() else {
            continue;
        };
        for (endpoint, e) in endpoints.iter_mut().zip(&view.endpoints) {
            if let (Some(r), Some(fields)) = (e.runtime, endpoint.as_object_mut()) {
                fields.insert("health".into(), health(r.ejected).into());
                fields.insert("in_flight".into(), r.in_flight.into());
            }
        }
    }
}

/// One line of a JSON value, as compact as JSON gets (for matches).
fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `    VirtualService default/demo #0` and what follows it.
fn route_line(out: &mut String, r: &Value, rest: &str) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let _ = writeln!(
        out,
        "    {} {} #{}{rest}",
        s(&r["kind"]),
        s(&r["source"]),
        r["index"]
    );
}

/// Each route's source, matches and clusters with their weights, read from the dump (one walk
/// of the snapshot, shared with `/config_dump`).
pub fn routes(dump: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let destinations = |out: &mut String, clusters: &Value, indent: &str| {
        let all = list(clusters);
        let total: u64 = all.iter().filter_map(|c| c["weight"].as_u64()).sum();
        for c in &all {
            let weight = c["weight"].as_u64().unwrap_or(0);
            let share = (weight * 100).checked_div(total).unwrap_or(0);
            let _ = writeln!(out, "{indent}→ {} ({share}%)", s(&c["cluster"]));
        }
    };
    for table in list(&dump["route_tables"]) {
        let _ = writeln!(out, "{}", s(&table["name"]));
        for vh in list(&table["virtual_hosts"]) {
            let _ = writeln!(out, "  {}", s(&vh["name"]));
            for r in list(&vh["routes"]) {
                let name = r["name"]
                    .as_str()
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default();
                route_line(&mut out, &r, &name);
                for m in list(&r["matches"]) {
                    let _ = writeln!(out, "      match {}", compact(&m));
                }
                let action = &r["action"];
                if let Some(f) = action.get("forward") {
                    destinations(&mut out, &f["clusters"], "      ");
                } else {
                    let _ = writeln!(out, "      {}", compact(action));
                }
            }
        }
    }
    // TCP and TLS routes belong to listeners and their servers, not to route tables.
    for l in list(&dump["listeners"]) {
        let mut owners = vec![(s(&l["name"]), l.clone())];
        owners.extend(
            list(&l["servers"])
                .into_iter()
                .map(|srv| (format!("{} server {}", s(&l["name"]), s(&srv["name"])), srv)),
        );
        for (owner, holder) in owners {
            let routes = list(&holder["routes"]);
            if routes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{owner}");
            for r in routes {
                let sni = list(&r["sni"]).iter().map(s).collect::<Vec<_>>().join(", ");
                let sni = if sni.is_empty() {
                    String::new()
                } else {
                    format!(" sni {sni}")
                };
                route_line(&mut out, &r, &sni);
                destinations(&mut out, &r["clusters"], "      ");
            }
        }
    }
    out
}

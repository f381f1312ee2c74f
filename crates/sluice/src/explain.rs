//! Text form of `sluice explain` for people; the JSON form is the serialised `Explanation`.
use sluice_compile::explain::Explanation;

pub fn text(e: &Explanation) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:<14}{v}\n"));
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    line(&mut out, "listener", &or_dash(&e.listener));
    line(&mut out, "route config", &or_dash(&e.route_config));
    line(&mut out, "virtual host", &or_dash(&e.virtual_host));
    let route = e.route.as_ref().map(|r| {
        format!(
            "{} http[{}]{}",
            r.virtual_service,
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
    out
}

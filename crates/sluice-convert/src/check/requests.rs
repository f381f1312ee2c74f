//! The requests `check` asks both configurations about, generated from both snapshots: every
//! port, every virtual host's names (a wildcard gets a name under it), and for every route
//! match its path, just below and just above a prefix, a path continuing the prefix mid-element,
//! plus the header, query and method conditions the match needs; a path nothing matches too.
use sluice_compile::snapshot::{
    ListenerProtocol, Matcher, RouteMatch, RouteTable, ServerMode, Snapshot,
};
use std::collections::BTreeSet;

/// One request (or, for TCP and TLS passthrough, one connection).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Probe {
    pub port: u32,
    /// `http`, `https`, `tls` or `tcp`.
    pub protocol: &'static str,
    pub host: Option<String>,
    pub sni: Option<String>,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.protocol {
            "tcp" => write!(f, "TCP connection to port {}", self.port),
            "tls" => write!(
                f,
                "TLS connection to port {} with SNI {}",
                self.port,
                self.sni.as_deref().unwrap_or("(none)")
            ),
            scheme => {
                write!(
                    f,
                    "{} {scheme}://{}:{}{}",
                    self.method,
                    self.host.as_deref().unwrap_or(""),
                    self.port,
                    self.path
                )?;
                for (k, v) in &self.headers {
                    write!(f, " [{k}: {v}]")?;
                }
                Ok(())
            }
        }
    }
}

/// A name a virtual host (or SNI) pattern serves.
fn sample_host(domain: &str) -> String {
    match domain {
        "*" => "any-host.example".into(),
        d => match d.strip_prefix("*.") {
            Some(rest) => format!("sub.{rest}"),
            None => d.to_string(),
        },
    }
}

/// Paths around one path matcher.
fn path_samples(m: &Matcher, out: &mut BTreeSet<String>) {
    let mut around = |p: &str| {
        let p = if p.is_empty() { "/" } else { p };
        out.insert(p.to_string());
        out.insert(format!("{}/", p.trim_end_matches('/')));
        out.insert(format!("{}/x", p.trim_end_matches('/')));
        out.insert(format!("{p}x"));
        if p.len() > 1 {
            out.insert(p[..p.len() - 1].to_string());
        }
    };
    match m {
        Matcher::Exact(p) | Matcher::Prefix(p) | Matcher::PathPrefix(p) => around(p),
        Matcher::Regex(r) => around(&crate::paths::literal_prefix(r.as_str())),
        Matcher::Present => {}
    }
}

/// A value that satisfies a header or query matcher.
fn value_for(m: &Matcher) -> String {
    match m {
        Matcher::Exact(v) => v.clone(),
        Matcher::Prefix(v) => format!("{v}x"),
        Matcher::PathPrefix(v) => v.clone(),
        Matcher::Regex(r) => crate::paths::literal_prefix(r.as_str()),
        Matcher::Present => "x".into(),
    }
}

fn method_for(m: &RouteMatch) -> String {
    match &m.method {
        Some(Matcher::Exact(x)) => x.clone(),
        Some(other) => value_for(other),
        None => "GET".into(),
    }
}

/// `(host, sni)` samples and route tables of one listener.
fn http_tables<'s>(
    snapshot: &'s Snapshot,
    protocol: &'s ListenerProtocol,
) -> Vec<(&'static str, Option<&'s RouteTable>, Vec<String>)> {
    match protocol {
        ListenerProtocol::Http { route_table } => vec![(
            "http",
            snapshot.route_tables.get(route_table).map(|t| &**t),
            Vec::new(),
        )],
        ListenerProtocol::Tls { servers } => servers
            .iter()
            .filter_map(|s| match &s.mode {
                ServerMode::Http { route_table, .. } => Some((
                    "https",
                    snapshot.route_tables.get(route_table).map(|t| &**t),
                    s.sni.clone(),
                )),
                _ => None,
            })
            .collect(),
        ListenerProtocol::Tcp { .. } => Vec::new(),
    }
}

type Headers = Vec<(String, String)>;

/// What one HTTP port (and scheme) is asked: every host with every plain path, and the
/// requests a match needs (method, path, headers).
struct HttpProbes {
    port: u32,
    protocol: &'static str,
    hosts: BTreeSet<String>,
    paths: BTreeSet<String>,
    special: Vec<(String, String, Headers)>,
}

/// Every probe for the two snapshots.
pub fn probes(snapshots: [&sluice_compile::Snapshot; 2]) -> Vec<Probe> {
    let mut out: BTreeSet<Probe> = BTreeSet::new();
    // Per (port, protocol): hosts, plain paths, and requests a match needs.
    let mut http: Vec<HttpProbes> = Vec::new();
    for snapshot in snapshots {
        for listener in snapshot.listeners.values() {
            let port = listener.service_port;
            match &listener.protocol {
                ListenerProtocol::Tcp { .. } => {
                    out.insert(l4(port, "tcp", None));
                }
                ListenerProtocol::Tls { servers } => {
                    for s in servers {
                        if let ServerMode::Passthrough { routes } | ServerMode::Tcp { routes, .. } =
                            &s.mode
                        {
                            for sni in s.sni.iter().chain(routes.iter().flat_map(|r| r.sni.iter()))
                            {
                                out.insert(l4(port, "tls", Some(sample_host(sni))));
                            }
                        }
                    }
                }
                ListenerProtocol::Http { .. } => {}
            }
            for (protocol, table, sni) in http_tables(snapshot, &listener.protocol) {
                let at = match http
                    .iter()
                    .position(|h| h.port == port && h.protocol == protocol)
                {
                    Some(i) => i,
                    None => {
                        http.push(HttpProbes {
                            port,
                            protocol,
                            hosts: BTreeSet::new(),
                            paths: BTreeSet::new(),
                            special: Vec::new(),
                        });
                        http.len() - 1
                    }
                };
                let entry = &mut http[at];
                entry.hosts.extend(sni.iter().map(|s| sample_host(s)));
                entry.paths.insert("/".into());
                entry.paths.insert("/sluice-convert-no-such-path".into());
                let Some(table) = table else { continue };
                for vh in &table.virtual_hosts {
                    entry.hosts.insert(sample_host(&vh.domain));
                    for route in &vh.routes {
                        for m in &route.matches {
                            let mut paths = BTreeSet::new();
                            if let Some(u) = &m.uri {
                                path_samples(u, &mut paths);
                            }
                            let mut needs: Vec<(String, String)> = m
                                .headers
                                .iter()
                                .map(|(k, v)| (k.clone(), value_for(v)))
                                .collect();
                            let query: Vec<String> = m
                                .query_params
                                .iter()
                                .map(|(k, v)| format!("{k}={}", value_for(v)))
                                .collect();
                            let method = method_for(m);
                            if needs.is_empty() && query.is_empty() && method == "GET" {
                                entry.paths.extend(paths);
                                continue;
                            }
                            needs.sort();
                            let samples: Vec<String> = if paths.is_empty() {
                                vec!["/".into()]
                            } else {
                                paths.iter().cloned().collect()
                            };
                            for p in samples {
                                let path = if query.is_empty() {
                                    p
                                } else {
                                    format!("{p}?{}", query.join("&"))
                                };
                                entry.special.push((method.clone(), path, needs.clone()));
                            }
                            // The same request without its conditions, to see who takes it then.
                            entry.paths.extend(paths);
                        }
                    }
                }
            }
        }
    }
    // A path one port routes is asked on every port: the other API may route it there.
    let all_paths: BTreeSet<String> = http.iter().flat_map(|h| h.paths.iter().cloned()).collect();
    let all_special: Vec<(String, String, Headers)> = http
        .iter()
        .flat_map(|h| h.special.iter().cloned())
        .collect();
    for h in &mut http {
        h.paths.extend(all_paths.iter().cloned());
        h.special.clone_from(&all_special);
    }
    for HttpProbes {
        port,
        protocol,
        mut hosts,
        paths,
        special,
    } in http
    {
        // A host no virtual host names too (a `*` one may still take it).
        hosts.insert("any-host.example".into());
        for host in &hosts {
            let sni = (protocol == "https").then(|| host.clone());
            for path in &paths {
                out.insert(Probe {
                    port,
                    protocol,
                    host: Some(host.clone()),
                    sni: sni.clone(),
                    method: "GET".into(),
                    path: path.clone(),
                    headers: Vec::new(),
                });
            }
            for (method, path, headers) in &special {
                out.insert(Probe {
                    port,
                    protocol,
                    host: Some(host.clone()),
                    sni: sni.clone(),
                    method: method.clone(),
                    path: path.clone(),
                    headers: headers.clone(),
                });
            }
        }
    }
    out.into_iter().collect()
}

fn l4(port: u32, protocol: &'static str, sni: Option<String>) -> Probe {
    Probe {
        port,
        protocol,
        host: None,
        sni,
        method: String::new(),
        path: String::new(),
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_under_wildcards() {
        assert_eq!(sample_host("*.example.com"), "sub.example.com");
        assert_eq!(sample_host("*"), "any-host.example");
        assert_eq!(sample_host("a.b"), "a.b");
    }
}

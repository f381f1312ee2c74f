//! `sluice graph`: the compiled routing as a picture (Mermaid or Graphviz DOT): listeners →
//! servers → virtual hosts → routes → clusters → endpoints.
use sluice_compile::snapshot::{
    Action, L4Route, ListenerProtocol, RouteTable, ServerMode, Snapshot, WeightedCluster,
};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Nodes and edges, written once and rendered in either syntax.
#[derive(Default)]
struct Graph {
    /// (id, label), in the order first seen.
    nodes: Vec<(String, String)>,
    seen: BTreeSet<String>,
    /// (from, to, label).
    edges: Vec<(String, String, String)>,
}

impl Graph {
    fn node(&mut self, id: String, label: String) -> String {
        if self.seen.insert(id.clone()) {
            self.nodes.push((id.clone(), label));
        }
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: impl Into<String>) {
        let e = (from.to_string(), to.to_string(), label.into());
        if !self.edges.contains(&e) {
            self.edges.push(e);
        }
    }
}

/// An identifier both syntaxes accept, stable for one name.
fn id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

fn build(snapshot: &Snapshot) -> Graph {
    let mut g = Graph::default();
    for listener in snapshot.listeners.values() {
        let l = g.node(
            id("listener", &listener.name),
            format!(
                "listener {} (port {})",
                listener.name, listener.service_port
            ),
        );
        match &listener.protocol {
            ListenerProtocol::Http { route_table } => {
                routes(&mut g, snapshot, &l, route_table);
            }
            ListenerProtocol::Tls { servers } => {
                for s in servers {
                    let sid = g.node(
                        id("server", &s.name),
                        format!("server {} (SNI {})", s.name, s.sni.join(", ")),
                    );
                    g.edge(&l, &sid, "");
                    match &s.mode {
                        ServerMode::Http { route_table, .. } => {
                            routes(&mut g, snapshot, &sid, route_table)
                        }
                        ServerMode::Tcp { routes: r, .. }
                        | ServerMode::Passthrough { routes: r } => l4(&mut g, snapshot, &sid, r),
                    }
                }
            }
            ListenerProtocol::Tcp { routes: r } => l4(&mut g, snapshot, &l, r),
        }
    }
    g
}

fn routes(g: &mut Graph, snapshot: &Snapshot, from: &str, table: &str) {
    let Some(table): Option<&RouteTable> = snapshot.route_tables.get(table).map(|t| &**t) else {
        return;
    };
    for vh in &table.virtual_hosts {
        let v = g.node(id("vhost", &vh.name), format!("host {}", vh.name));
        g.edge(from, &v, "");
        for r in &vh.routes {
            let name = format!("{} {} #{}", r.kind, r.virtual_service, r.index);
            let label = match &r.name {
                Some(n) => format!("{name} ({n})"),
                None => name.clone(),
            };
            let rid = g.node(id("route", &format!("{}_{name}", vh.name)), label);
            g.edge(&v, &rid, "");
            match &r.action {
                Action::Forward(f) => clusters(g, snapshot, &rid, &f.destinations, f.total_weight),
                Action::Redirect(_) => {
                    let to = g.node(id("local", "redirect"), "redirect".into());
                    g.edge(&rid, &to, "");
                }
                Action::DirectResponse { status, .. } => {
                    let to = g.node(
                        id("local", &status.to_string()),
                        format!("answers {status}"),
                    );
                    g.edge(&rid, &to, "");
                }
            }
        }
    }
}

fn l4(g: &mut Graph, snapshot: &Snapshot, from: &str, routes: &[L4Route]) {
    for r in routes {
        let name = format!("{} {} #{}", r.kind, r.virtual_service, r.index);
        let rid = g.node(id("route", &format!("{from}_{name}")), name);
        g.edge(from, &rid, r.sni.join(", "));
        clusters(g, snapshot, &rid, &r.destinations, r.total_weight);
    }
}

fn clusters(g: &mut Graph, snapshot: &Snapshot, from: &str, d: &[WeightedCluster], total: u32) {
    for w in d {
        let cid = g.node(id("cluster", &w.cluster), format!("cluster {}", w.cluster));
        let share = if total == 0 {
            String::new()
        } else {
            format!("{}%", u64::from(w.weight) * 100 / u64::from(total))
        };
        g.edge(from, &cid, share);
        let Some(cluster) = snapshot.clusters.get(&w.cluster) else {
            continue;
        };
        if let Some(problem) = &cluster.problem {
            let p = g.node(id("problem", &w.cluster), format!("{problem:?}"));
            g.edge(&cid, &p, "");
        }
        for e in &cluster.endpoints {
            let addr = format!("{}:{}", e.address, e.port);
            let eid = g.node(id("endpoint", &addr), format!("endpoint {addr}"));
            g.edge(&cid, &eid, "");
        }
    }
}

/// Mermaid flowchart text.
pub fn mermaid(snapshot: &Snapshot) -> String {
    let g = build(snapshot);
    let mut out = String::from("flowchart LR\n");
    let quote = |s: &str| s.replace('"', "#quot;");
    for (id, label) in &g.nodes {
        let _ = writeln!(out, "  {id}[\"{}\"]", quote(label));
    }
    for (from, to, label) in &g.edges {
        if label.is_empty() {
            let _ = writeln!(out, "  {from} --> {to}");
        } else {
            let _ = writeln!(out, "  {from} -->|\"{}\"| {to}", quote(label));
        }
    }
    out
}

/// Graphviz DOT text.
pub fn dot(snapshot: &Snapshot) -> String {
    let g = build(snapshot);
    let mut out = String::from("digraph sluice {\n  rankdir=LR;\n  node [shape=box];\n");
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for (id, label) in &g.nodes {
        let _ = writeln!(out, "  {id} [label=\"{}\"];", quote(label));
    }
    for (from, to, label) in &g.edges {
        let _ = writeln!(out, "  {from} -> {to} [label=\"{}\"];", quote(label));
    }
    out.push_str("}\n");
    out
}

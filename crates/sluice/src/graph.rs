//! `sluice graph`: the compiled routing as a picture (Mermaid or Graphviz DOT): listeners →
//! servers → virtual hosts → routes → clusters → endpoints.
use sluice_compile::snapshot::{
    Action, L4Route, ListenerProtocol, RouteTable, ServerMode, Snapshot, WeightedCluster,
};
use std::fmt::Write as _;

/// Nodes and edges, written once and rendered in either syntax.
#[derive(Default)]
struct Graph {
    /// (id, label), in the order first seen.
    nodes: Vec<(String, String)>,
    /// A node's full key (what it is and where) → its id.
    ids: std::collections::HashMap<String, String>,
    /// (from, to, label).
    edges: Vec<(String, String, String)>,
}

impl Graph {
    /// The node for `key` (made on first use): ids are numbered, so two names that differ
    /// only in punctuation stay two nodes.
    fn node(&mut self, key: String, label: String) -> String {
        if let Some(id) = self.ids.get(&key) {
            return id.clone();
        }
        let id = format!("n{}", self.nodes.len());
        self.ids.insert(key, id.clone());
        self.nodes.push((id.clone(), label));
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: impl Into<String>) {
        let e = (from.to_string(), to.to_string(), label.into());
        if !self.edges.contains(&e) {
            self.edges.push(e);
        }
    }
}

fn build(snapshot: &Snapshot) -> Graph {
    let mut g = Graph::default();
    for listener in snapshot.listeners.values() {
        let l = g.node(
            format!("listener {}", listener.name),
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
                        format!("server {} {}", listener.name, s.name),
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
        let vkey = format!("vhost {} {}", table.name, vh.name);
        let v = g.node(vkey.clone(), format!("host {}", vh.name));
        g.edge(from, &v, "");
        for (position, r) in vh.routes.iter().enumerate() {
            let name = format!("{} {} #{}", r.kind, r.virtual_service, r.index);
            let label = match &r.name {
                Some(n) => format!("{name} ({n})"),
                None => name.clone(),
            };
            let rkey = format!("route {vkey} {position}");
            let rid = g.node(rkey.clone(), label);
            g.edge(&v, &rid, "");
            match &r.action {
                Action::Forward(f) => clusters(g, snapshot, &rid, &f.destinations, f.total_weight),
                Action::Redirect(_) => {
                    let to = g.node(format!("local {rkey}"), "redirect".into());
                    g.edge(&rid, &to, "");
                }
                Action::DirectResponse { status, .. } => {
                    let to = g.node(format!("local {rkey}"), format!("answers {status}"));
                    g.edge(&rid, &to, "");
                }
            }
        }
    }
}

fn l4(g: &mut Graph, snapshot: &Snapshot, from: &str, routes: &[L4Route]) {
    for (position, r) in routes.iter().enumerate() {
        let name = format!("{} {} #{}", r.kind, r.virtual_service, r.index);
        let rid = g.node(format!("l4route {from} {position}"), name);
        g.edge(from, &rid, r.sni.join(", "));
        clusters(g, snapshot, &rid, &r.destinations, r.total_weight);
    }
}

fn clusters(g: &mut Graph, snapshot: &Snapshot, from: &str, d: &[WeightedCluster], total: u32) {
    for w in d {
        let cid = g.node(
            format!("cluster {}", w.cluster),
            format!("cluster {}", w.cluster),
        );
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
            let p = g.node(format!("problem {}", w.cluster), format!("{problem:?}"));
            g.edge(&cid, &p, "");
        }
        for e in &cluster.endpoints {
            let addr = format!("{}:{}", e.address, e.port);
            let eid = g.node(format!("endpoint {addr}"), format!("endpoint {addr}"));
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

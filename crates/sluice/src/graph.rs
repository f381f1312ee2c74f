//! `sluice graph` and the admin's `/ui`: the compiled routing as one model of nodes in layers
//! (listeners → servers → virtual hosts → routes → clusters → endpoints) and edges, walked
//! once and rendered as Mermaid, Graphviz DOT (here) or SVG (`admin::ui`).
use sluice_compile::snapshot::{
    Action, L4Route, ListenerProtocol, RouteTable, ServerMode, Snapshot, WeightedCluster,
};
use std::fmt::Write as _;

/// A node's column, left to right.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Layer {
    Listener,
    Server,
    Host,
    Route,
    Cluster,
    /// Endpoints, and what answers instead of one (redirects, direct responses, problems).
    Endpoint,
}

impl Layer {
    pub const ALL: [Layer; 6] = [
        Layer::Listener,
        Layer::Server,
        Layer::Host,
        Layer::Route,
        Layer::Cluster,
        Layer::Endpoint,
    ];

    pub fn heading(self) -> &'static str {
        match self {
            Layer::Listener => "listeners",
            Layer::Server => "TLS servers (SNI)",
            Layer::Host => "virtual hosts",
            Layer::Route => "routes",
            Layer::Cluster => "clusters",
            Layer::Endpoint => "endpoints",
        }
    }
}

pub struct Node {
    pub id: String,
    pub layer: Layer,
    /// One line, for Mermaid and DOT.
    pub label: String,
    /// The same in two parts, for a box: what it is, and a detail.
    pub title: String,
    pub detail: String,
    /// For cluster nodes: the cluster's name (request counts are keyed by it).
    pub cluster: Option<String>,
}

pub struct Edge {
    pub from: String,
    pub to: String,
    /// A route's share of a cluster (`90%`), a TLS route's SNI names; else empty.
    pub label: String,
}

/// Nodes and edges, written once and rendered in any syntax.
#[derive(Default)]
pub struct Graph {
    /// In the order first seen.
    pub nodes: Vec<Node>,
    /// A node's full key (what it is and where) → its id.
    ids: std::collections::HashMap<String, String>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The node for `key` (made on first use): ids are numbered, so two names that differ
    /// only in punctuation stay two nodes.
    fn node(
        &mut self,
        key: String,
        layer: Layer,
        label: String,
        title: &str,
        detail: &str,
    ) -> String {
        if let Some(id) = self.ids.get(&key) {
            return id.clone();
        }
        let id = format!("n{}", self.nodes.len());
        self.ids.insert(key, id.clone());
        self.nodes.push(Node {
            id: id.clone(),
            layer,
            label,
            title: title.to_string(),
            detail: detail.to_string(),
            cluster: None,
        });
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: impl Into<String>) {
        let (from, to, label) = (from.to_string(), to.to_string(), label.into());
        if !self
            .edges
            .iter()
            .any(|e| e.from == from && e.to == to && e.label == label)
        {
            self.edges.push(Edge { from, to, label });
        }
    }
}

pub fn build(snapshot: &Snapshot) -> Graph {
    let mut g = Graph::default();
    for listener in snapshot.listeners.values() {
        let port = format!("port {}", listener.service_port);
        let l = g.node(
            format!("listener {}", listener.name),
            Layer::Listener,
            format!("listener {} ({port})", listener.name),
            &listener.name,
            &port,
        );
        match &listener.protocol {
            ListenerProtocol::Http { route_table } => {
                routes(&mut g, snapshot, &l, route_table);
            }
            ListenerProtocol::Tls { servers } => {
                for s in servers {
                    let sni = format!("SNI {}", s.sni.join(", "));
                    let sid = g.node(
                        format!("server {} {}", listener.name, s.name),
                        Layer::Server,
                        format!("server {} ({sni})", s.name),
                        &s.name,
                        &sni,
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
        let v = g.node(
            vkey.clone(),
            Layer::Host,
            format!("host {}", vh.name),
            &vh.name,
            &table.name,
        );
        g.edge(from, &v, "");
        for (position, r) in vh.routes.iter().enumerate() {
            let which = format!("{} #{}", r.kind, r.index);
            let (label, detail) = match &r.name {
                Some(n) => (
                    format!("{} {} #{} ({n})", r.kind, r.virtual_service, r.index),
                    format!("{which} {n}"),
                ),
                None => (
                    format!("{} {} #{}", r.kind, r.virtual_service, r.index),
                    which,
                ),
            };
            let rkey = format!("route {vkey} {position}");
            let rid = g.node(
                rkey.clone(),
                Layer::Route,
                label,
                &r.virtual_service,
                &detail,
            );
            g.edge(&v, &rid, "");
            let answer = match &r.action {
                Action::Forward(f) => {
                    clusters(g, snapshot, &rid, &f.destinations, f.total_weight);
                    continue;
                }
                Action::Redirect(_) => "redirect".to_string(),
                Action::DirectResponse { status, .. } => format!("answers {status}"),
            };
            let to = g.node(
                format!("local {rkey}"),
                Layer::Endpoint,
                answer.clone(),
                &answer,
                "",
            );
            g.edge(&rid, &to, "");
        }
    }
}

fn l4(g: &mut Graph, snapshot: &Snapshot, from: &str, routes: &[L4Route]) {
    for (position, r) in routes.iter().enumerate() {
        let which = match r.sni.as_slice() {
            [] => format!("{} #{}", r.kind, r.index),
            sni => format!("{} #{} SNI {}", r.kind, r.index, sni.join(", ")),
        };
        let rid = g.node(
            format!("l4route {from} {position}"),
            Layer::Route,
            format!("{} {} #{}", r.kind, r.virtual_service, r.index),
            &r.virtual_service,
            &which,
        );
        g.edge(from, &rid, r.sni.join(", "));
        clusters(g, snapshot, &rid, &r.destinations, r.total_weight);
    }
}

fn clusters(g: &mut Graph, snapshot: &Snapshot, from: &str, d: &[WeightedCluster], total: u32) {
    for w in d {
        let cluster = snapshot.clusters.get(&w.cluster);
        // `outbound|port|subset|fqdn` is long: the box shows the service, then port and subset.
        let (title, detail) = match cluster {
            Some(c) if c.subset.is_empty() => (c.host.clone(), format!("port {}", c.port)),
            Some(c) => (
                c.host.clone(),
                format!("port {} subset {}", c.port, c.subset),
            ),
            None => (w.cluster.clone(), String::new()),
        };
        let cid = g.node(
            format!("cluster {}", w.cluster),
            Layer::Cluster,
            format!("cluster {}", w.cluster),
            &title,
            &detail,
        );
        if let Some(n) = g.nodes.last_mut().filter(|n| n.id == cid) {
            n.cluster = Some(w.cluster.clone());
        }
        let share = if total == 0 {
            String::new()
        } else {
            format!("{}%", u64::from(w.weight) * 100 / u64::from(total))
        };
        g.edge(from, &cid, share);
        let Some(cluster) = cluster else {
            continue;
        };
        if let Some(problem) = &cluster.problem {
            let why = format!("{problem:?}");
            let p = g.node(
                format!("problem {}", w.cluster),
                Layer::Endpoint,
                why.clone(),
                "problem",
                &why,
            );
            g.edge(&cid, &p, "");
        }
        for e in &cluster.endpoints {
            let addr = format!("{}:{}", e.address, e.port);
            let eid = g.node(
                format!("endpoint {addr}"),
                Layer::Endpoint,
                format!("endpoint {addr}"),
                &addr,
                &e.locality,
            );
            g.edge(&cid, &eid, "");
        }
    }
}

/// Mermaid flowchart text.
pub fn mermaid(snapshot: &Snapshot) -> String {
    let g = build(snapshot);
    let mut out = String::from("flowchart LR\n");
    let quote = |s: &str| s.replace('"', "#quot;");
    for n in &g.nodes {
        let _ = writeln!(out, "  {}[\"{}\"]", n.id, quote(&n.label));
    }
    for e in &g.edges {
        if e.label.is_empty() {
            let _ = writeln!(out, "  {} --> {}", e.from, e.to);
        } else {
            let _ = writeln!(out, "  {} -->|\"{}\"| {}", e.from, quote(&e.label), e.to);
        }
    }
    out
}

/// Graphviz DOT text.
pub fn dot(snapshot: &Snapshot) -> String {
    let g = build(snapshot);
    let mut out = String::from("digraph sluice {\n  rankdir=LR;\n  node [shape=box];\n");
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for n in &g.nodes {
        let _ = writeln!(out, "  {} [label=\"{}\"];", n.id, quote(&n.label));
    }
    for e in &g.edges {
        let _ = writeln!(
            out,
            "  {} -> {} [label=\"{}\"];",
            e.from,
            e.to,
            quote(&e.label)
        );
    }
    out.push_str("}\n");
    out
}

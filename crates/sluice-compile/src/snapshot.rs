//! The compiled, immutable routing configuration. Everything the data plane and `explain` need
//! is resolved here: no lookups into the Store at request time.
pub use crate::policy::{HeaderPolicy, RoutePolicy};
pub use crate::tls::{ServerMode, TlsServer};
use regex::Regex;
use sluice_api::istio::SimpleLb;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Snapshot {
    /// By the port the instance binds.
    pub listeners: BTreeMap<u32, Listener>,
    pub route_tables: HashMap<String, Arc<RouteTable>>,
    pub clusters: BTreeMap<String, Arc<Cluster>>,
}

impl Snapshot {
    /// The listener for a Gateway (service) port, after the instance's port map.
    pub fn listener_for_service_port(&self, port: u32) -> Option<&Listener> {
        self.listeners.values().find(|l| l.service_port == port)
    }
}

#[derive(Debug, Clone)]
pub enum ListenerProtocol {
    /// Plaintext HTTP/1.1 and HTTP/2 (h2c), one route table for the port.
    Http { route_table: String },
    /// TLS: one server per Gateway server of the port (HTTPS or TLS protocol), chosen by the
    /// ClientHello's SNI; each terminates (then HTTP or `tcp[]` routes) or passes through.
    Tls { servers: Vec<TlsServer> },
    /// Raw TCP: VirtualService `tcp[]` routes, the first that matches wins.
    Tcp { routes: Vec<L4Route> },
}

/// A `tcp[]` or `tls[]` route of a VirtualService.
#[derive(Debug, Clone)]
pub struct L4Route {
    /// `namespace/name` of the VirtualService (or TLSRoute/TCPRoute, see `kind`).
    pub virtual_service: String,
    /// `VirtualService`, `TLSRoute` or `TCPRoute`.
    pub kind: &'static str,
    pub index: usize,
    /// `tls[]`: SNI names (exact, `*.suffix`, `*`) the route takes; empty for `tcp[]`.
    pub sni: Vec<String>,
    pub destinations: Vec<WeightedCluster>,
    pub total_weight: u32,
}

impl L4Route {
    /// Whether the route takes this SNI.
    pub fn takes_sni(&self, sni: &str) -> bool {
        self.sni.iter().any(|s| crate::hosts::covers(s, sni))
    }
}

#[derive(Debug, Clone)]
pub struct Listener {
    /// Istio's name: `0.0.0.0_<bind port>`.
    pub name: String,
    pub bind_port: u32,
    pub service_port: u32,
    pub protocol: ListenerProtocol,
}

impl Listener {
    pub fn new(bind_port: u32, service_port: u32, protocol: ListenerProtocol) -> Listener {
        Listener {
            name: format!("0.0.0.0_{bind_port}"),
            bind_port,
            service_port,
            protocol,
        }
    }

    /// The HTTP route table for a connection with this SNI (ignored for plaintext).
    pub fn route_table(&self, sni: Option<&str>) -> Option<&str> {
        match &self.protocol {
            ListenerProtocol::Http { route_table } => Some(route_table),
            ListenerProtocol::Tls { servers } => {
                crate::tls::select_server(servers, sni).and_then(TlsServer::route_table)
            }
            ListenerProtocol::Tcp { .. } => None,
        }
    }

    pub fn scheme(&self) -> &'static str {
        match &self.protocol {
            ListenerProtocol::Http { .. } | ListenerProtocol::Tcp { .. } => "http",
            ListenerProtocol::Tls { .. } => "https",
        }
    }
}

#[derive(Debug, Default)]
pub struct RouteTable {
    /// `http.<bind port>`.
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    exact: crate::FastMap<String, usize>,
    /// `*.example.com` stored as `.example.com`.
    wildcard: crate::FastMap<String, usize>,
    any: Option<usize>,
}

impl RouteTable {
    pub fn new(name: String, virtual_hosts: Vec<VirtualHost>) -> Self {
        let mut t = RouteTable {
            name,
            virtual_hosts,
            ..Default::default()
        };
        for (i, vh) in t.virtual_hosts.iter().enumerate() {
            if vh.domain == "*" {
                t.any = Some(i);
            } else if let Some(suffix) = vh.domain.strip_prefix('*') {
                t.wildcard.insert(suffix.to_string(), i);
            } else {
                t.exact.insert(vh.domain.clone(), i);
            }
        }
        t
    }

    /// The virtual host for a Host header (lower-case, port removed): exact name, then the
    /// longest wildcard suffix, then `*`. Costs one hash lookup per label.
    pub fn virtual_host(&self, host: &str) -> Option<&VirtualHost> {
        if let Some(&i) = self.exact.get(host) {
            return Some(&self.virtual_hosts[i]);
        }
        let mut rest = host;
        while let Some(dot) = rest.find('.') {
            let suffix = &rest[dot..];
            if let Some(&i) = self.wildcard.get(suffix) {
                return Some(&self.virtual_hosts[i]);
            }
            rest = &rest[dot + 1..];
        }
        self.any.map(|i| &self.virtual_hosts[i])
    }
}

#[derive(Debug)]
pub struct VirtualHost {
    /// `domain:port`, as Istio names virtual hosts.
    pub name: String,
    pub domain: String,
    pub routes: Vec<Route>,
    /// The server asks for `tls.httpsRedirect`: every request gets a 301 to https.
    pub https_redirect: bool,
}

#[derive(Debug)]
pub struct Route {
    /// `namespace/name` of the VirtualService (or HTTPRoute, see `kind`).
    pub virtual_service: String,
    /// `VirtualService` or `HTTPRoute`.
    pub kind: &'static str,
    /// Index in the VirtualService's `http` list (the HTTPRoute's `rules`).
    pub index: usize,
    pub name: Option<String>,
    /// OR-ed; empty matches everything.
    pub matches: Vec<RouteMatch>,
    pub action: Action,
    pub policy: RoutePolicy,
}

#[derive(Debug, Default)]
pub struct RouteMatch {
    pub uri: Option<Matcher>,
    pub scheme: Option<Matcher>,
    pub method: Option<Matcher>,
    pub authority: Option<Matcher>,
    /// Lower-cased header names.
    pub headers: Vec<(String, Matcher)>,
    pub without_headers: Vec<(String, Matcher)>,
    pub query_params: Vec<(String, Matcher)>,
    /// Gateway (service) port.
    pub port: Option<u32>,
    pub ignore_uri_case: bool,
}

#[derive(Debug)]
pub enum Matcher {
    Exact(String),
    Prefix(String),
    /// Gateway API `PathPrefix`: whole path elements (`/abc` matches `/abc`, `/abc/` and
    /// `/abc/x`, not `/abcd`); kept without a trailing `/`, so `/` is empty and matches all.
    PathPrefix(String),
    /// Anchored as a full match at compile time.
    Regex(Regex),
    /// A header match with no condition: the header must be present.
    Present,
}

impl RouteMatch {
    /// How much of `path` a `rewrite.uri` replaces: the matched prefix for a prefix match,
    /// the whole path for exact and regex matches, and `/` without a path match (Istio
    /// generates `prefix: /` then).
    pub fn rewrite_len(&self, path: &str) -> usize {
        match &self.uri {
            Some(Matcher::Prefix(p) | Matcher::PathPrefix(p)) => p.len(),
            Some(_) => path.len(),
            None => 1,
        }
    }
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => value == e,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::PathPrefix(p) => {
                value.starts_with(p.as_str())
                    && matches!(value.as_bytes().get(p.len()), None | Some(b'/'))
            }
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
        }
    }

    pub fn matches_ignore_case(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => value.eq_ignore_ascii_case(e),
            Matcher::Prefix(p) => {
                value.len() >= p.len()
                    && value.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            Matcher::PathPrefix(_) => self.matches(value),
            // Compiled case-insensitive when the match asks for it.
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
        }
    }
}

#[derive(Debug)]
pub enum Action {
    Forward(Forward),
    Redirect(Redirect),
    DirectResponse { status: u16, body: Arc<[u8]> },
}

#[derive(Debug)]
pub struct Forward {
    pub destinations: Vec<WeightedCluster>,
    pub total_weight: u32,
}

#[derive(Debug, Clone)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
    /// The destination's own `headers`, applied after the route's.
    pub headers: Option<Arc<HeaderPolicy>>,
}

#[derive(Debug)]
pub struct Redirect {
    pub status: u16,
    pub uri: Option<String>,
    /// Gateway API `path` (wins over `uri`).
    pub path: Option<crate::policy::PathRewrite>,
    pub authority: Option<String>,
    pub scheme: Option<String>,
    pub port: Option<u32>,
    pub port_from_request: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    LeastRequest,
    RoundRobin,
    Random,
}

impl LbPolicy {
    /// Istio's name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            LbPolicy::LeastRequest => "LEAST_REQUEST",
            LbPolicy::RoundRobin => "ROUND_ROBIN",
            LbPolicy::Random => "RANDOM",
        }
    }

    pub fn from_istio(s: Option<SimpleLb>) -> Self {
        match s {
            Some(SimpleLb::RoundRobin) => LbPolicy::RoundRobin,
            Some(SimpleLb::Random) => LbPolicy::Random,
            _ => LbPolicy::LeastRequest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub address: String,
    pub port: u32,
    pub weight: u32,
    /// `region/zone/subzone`; empty: unknown.
    pub locality: String,
    /// Locality failover level: 0 takes traffic first, then 1… (always 0 without failover).
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterProblem {
    /// No ServiceEntry or Service defines the host.
    UnknownHost,
    /// No DestinationRule defines the subset.
    UnknownSubset,
    /// The DestinationRule's TLS settings cannot be used (ISTIO_MUTUAL, missing Secret).
    Tls(crate::tls::TlsProblem),
    /// A Gateway API backendRef that cannot be used (unknown kind, missing Service, another
    /// namespace without a ReferenceGrant): its share of requests answers `status` (500 for
    /// HTTPRoute; 503, UNAVAILABLE, for GRPCRoute).
    InvalidBackendRef { why: String, status: u16 },
}

impl ClusterProblem {
    /// What a request routed to such a cluster gets: 500 for an invalid Gateway API backend
    /// (the spec's rule), 503 (flag NC) otherwise, as Istio answers.
    pub fn status(&self) -> u16 {
        match self {
            ClusterProblem::InvalidBackendRef { status, .. } => *status,
            _ => 503,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `outbound|<port>|<subset>|<fqdn>`.
    pub name: String,
    pub host: String,
    pub port: u32,
    pub subset: String,
    pub endpoints: Vec<ClusterEndpoint>,
    pub lb: LbPolicy,
    /// Set when the cluster cannot have endpoints; requests get 503 with flag NC.
    pub problem: Option<ClusterProblem>,
    /// The upstream speaks HTTP/2 (port protocol HTTP2 or GRPC).
    pub http2: bool,
    /// TLS to the endpoints (DestinationRule `tls` SIMPLE or MUTUAL).
    pub tls: Option<Arc<crate::tls::UpstreamTls>>,
    /// The DestinationRule's connection pool, outlier detection and consistent hashing.
    pub policy: crate::policy::cluster::ClusterPolicy,
    /// The service behind the cluster, as Istio's metrics name it.
    pub destination: ServiceRef,
}

/// The service a cluster sends to, as Istio's metrics name it (`destination_service_name`,
/// `destination_service_namespace`, `destination_version`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRef {
    /// The Service's name, or the host of a ServiceEntry; empty when unknown.
    pub name: String,
    pub namespace: String,
    /// The subset's labels.
    pub labels: BTreeMap<String, String>,
}

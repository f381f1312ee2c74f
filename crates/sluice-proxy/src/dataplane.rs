//! A snapshot made ready for traffic: route tables by bound port, TLS server configs, and one
//! runtime per cluster. Built once per configuration and swapped in whole; requests hold the
//! one they started with.
use crate::cluster::ClusterRuntime;
use sluice_compile::snapshot::{L4Route, ListenerProtocol, RouteTable, TlsServer};
use sluice_compile::{FastMap, Snapshot};
use std::sync::Arc;

#[derive(Debug)]
pub struct PortRoutes {
    /// The Gateway port, for `port` matches and redirects.
    pub service_port: u32,
    pub kind: PortKind,
}

#[derive(Debug)]
pub enum PortKind {
    Plain(Arc<RouteTable>),
    /// TLS servers chosen by SNI; `servers[i]` is made ready as `runtimes[i]`.
    Tls {
        servers: Vec<TlsServer>,
        runtimes: Vec<TlsRuntime>,
        /// Some server passes TLS through: the ClientHello is read before anything is decided.
        passthrough: bool,
    },
    /// Raw TCP: `tcp[]` routes.
    Tcp(Vec<L4Route>),
}

/// A TLS server ready for connections.
#[derive(Debug)]
pub struct TlsRuntime {
    /// `None` for a passthrough server.
    pub config: Option<Arc<rustls::ServerConfig>>,
    /// Empty for servers that do not route HTTP.
    pub table: Arc<RouteTable>,
}

impl PortRoutes {
    /// The TLS server for an SNI (exact, longest wildcard, `*`), as at handshake time.
    pub fn tls_server(&self, sni: Option<&str>) -> Option<(&TlsServer, &TlsRuntime)> {
        let PortKind::Tls {
            servers, runtimes, ..
        } = &self.kind
        else {
            return None;
        };
        let i = sluice_compile::tls::select_index(servers, sni)?;
        Some((&servers[i], &runtimes[i]))
    }
}

#[derive(Default)]
pub struct Dataplane {
    pub snapshot: Arc<Snapshot>,
    pub ports: FastMap<u32, PortRoutes>,
    pub clusters: FastMap<String, Arc<ClusterRuntime>>,
}

impl Dataplane {
    /// A TLS server whose certificate cannot be loaded is left out, and a cluster whose upstream
    /// TLS material cannot be used answers 503 (both logged): everything else keeps serving.
    pub fn new(
        snapshot: Arc<Snapshot>,
        upstream: &crate::upstream::UpstreamOptions,
        registry: &crate::cluster::Registry,
        metrics: &crate::metrics::Metrics,
    ) -> Dataplane {
        let table = |name: &str| snapshot.route_tables.get(name).cloned().unwrap_or_default();
        let mut ports = FastMap::default();
        for (bind, l) in &snapshot.listeners {
            let kind = match &l.protocol {
                ListenerProtocol::Http { route_table } => PortKind::Plain(table(route_table)),
                ListenerProtocol::Tcp { routes } => PortKind::Tcp(routes.clone()),
                ListenerProtocol::Tls { servers } => {
                    let mut ready = (Vec::new(), Vec::new());
                    for s in servers {
                        let config = match s.settings() {
                            None => None,
                            Some(settings) => match crate::tls::server_config(settings, &s.name) {
                                Ok(config) => Some(config),
                                Err(e) => {
                                    tracing::warn!(server = %s.name, listener = %l.name, "TLS server left out: {e}");
                                    continue;
                                }
                            },
                        };
                        let table = s.route_table().map(table).unwrap_or_default();
                        ready.0.push(s.clone());
                        ready.1.push(TlsRuntime { config, table });
                    }
                    PortKind::Tls {
                        passthrough: ready.0.iter().any(|s| s.settings().is_none()),
                        servers: ready.0,
                        runtimes: ready.1,
                    }
                }
            };
            ports.insert(
                *bind,
                PortRoutes {
                    service_port: l.service_port,
                    kind,
                },
            );
        }
        let clusters = registry.build(&snapshot, upstream, metrics);
        Dataplane {
            snapshot,
            ports,
            clusters,
        }
    }
}

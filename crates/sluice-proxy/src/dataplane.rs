//! A snapshot made ready for traffic: route tables by bound port, TLS server configs, and one
//! balancer per cluster. Built once per configuration and swapped in whole; requests hold the
//! one they started with.
use crate::lb::Balancer;
use crate::Error;
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
    /// `servers[i]` is made ready as `runtimes[i]`.
    Tls {
        servers: Vec<TlsServer>,
        runtimes: Vec<TlsRuntime>,
    },
    /// `tcp[]` routes; with TLS servers (terminated TLS), `servers[i]` is ready as `runtimes[i]`.
    Tcp {
        routes: Vec<L4Route>,
        servers: Vec<TlsServer>,
        runtimes: Vec<TlsRuntime>,
    },
    Passthrough(Vec<L4Route>),
}

/// A TLS server ready for handshakes.
#[derive(Debug)]
pub struct TlsRuntime {
    pub config: Arc<rustls::ServerConfig>,
    pub table: Arc<RouteTable>,
}

impl PortRoutes {
    /// The TLS server for an SNI (exact, longest wildcard, `*`), as at handshake time.
    pub fn tls_server(&self, sni: Option<&str>) -> Option<(&TlsServer, &TlsRuntime)> {
        let (PortKind::Tls { servers, runtimes }
        | PortKind::Tcp {
            servers, runtimes, ..
        }) = &self.kind
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
    pub balancers: FastMap<String, Arc<Balancer>>,
}

impl Dataplane {
    /// Fails when TLS material cannot be read or does not fit together.
    pub fn new(
        snapshot: Arc<Snapshot>,
        upstream: &crate::upstream::UpstreamOptions,
        pools: &crate::pool::Registry,
    ) -> Result<Dataplane, Error> {
        let table = |name: &str| snapshot.route_tables.get(name).cloned().unwrap_or_default();
        let runtimes = |servers: &[TlsServer]| -> Result<Vec<TlsRuntime>, Error> {
            servers
                .iter()
                .map(|s| {
                    Ok(TlsRuntime {
                        config: crate::tls::server_config(&s.settings, &s.name)?,
                        table: table(&s.route_table),
                    })
                })
                .collect()
        };
        let mut ports = FastMap::default();
        for (bind, l) in &snapshot.listeners {
            let kind = match &l.protocol {
                ListenerProtocol::Http { route_table } => PortKind::Plain(table(route_table)),
                ListenerProtocol::Https { servers } => PortKind::Tls {
                    runtimes: runtimes(servers)?,
                    servers: servers.clone(),
                },
                ListenerProtocol::Tcp { routes, tls } => PortKind::Tcp {
                    routes: routes.clone(),
                    runtimes: runtimes(tls)?,
                    servers: tls.clone(),
                },
                ListenerProtocol::TlsPassthrough { routes } => {
                    PortKind::Passthrough(routes.clone())
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
        let balancers = snapshot
            .clusters
            .iter()
            .map(|(name, c)| {
                // Plaintext HTTP/1.1 clusters use the per-endpoint pools; HTTP/2 and TLS clusters
                // the shared multiplexing clients.
                let pooled = !c.http2 && c.tls.is_none();
                let mut balancer = Balancer::with_pools(c.clone(), |authority| {
                    pooled.then(|| pools.pool(authority, upstream))
                });
                if let Some(tls) = &c.tls {
                    balancer.tls = Some(crate::upstream_tls::client(c, tls, upstream)?);
                }
                Ok((name.clone(), Arc::new(balancer)))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Dataplane {
            snapshot,
            ports,
            balancers,
        })
    }
}

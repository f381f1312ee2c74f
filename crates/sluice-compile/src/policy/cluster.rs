//! What a DestinationRule's `trafficPolicy` makes of one cluster: connection-pool limits,
//! outlier detection and consistent hashing, resolved with Istio's inheritance (port level,
//! subset, subset port level) and defaults, and where each part came from (for `explain`).
use http::header::HeaderName;
use sluice_api::istio::{
    ConnectionPoolSettings, ConsistentHashLb, LoadBalancerSettings, LocalityFailover,
    OutlierDetection, PortTrafficPolicy, TrafficPolicy,
};
use std::time::Duration;

/// Istio's TCP idle timeout when a DestinationRule sets none.
pub const DEFAULT_TCP_IDLE: Duration = Duration::from_secs(3600);
/// Envoy's circuit-breaker default as Istio sets it: no limit (2^32-1).
pub const UNLIMITED: u32 = u32::MAX;
/// Istio's default maglev table (a prime; Envoy's default too).
pub const DEFAULT_MAGLEV_TABLE: u64 = 65537;
/// Envoy's default minimum ring size.
pub const DEFAULT_RING_SIZE: u64 = 1024;
/// Envoy's cap on an ejection (`max_ejection_time`), which Istio leaves at its default.
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// Which part of the DestinationRule supplied a policy field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Nothing set it: Istio's default.
    #[default]
    Default,
    TopLevel,
    /// The top-level `portLevelSettings` entry for the cluster's port.
    PortLevel,
    Subset,
    /// The subset's own `portLevelSettings` entry for the port.
    SubsetPortLevel,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::TopLevel => "trafficPolicy",
            Origin::PortLevel => "trafficPolicy.portLevelSettings",
            Origin::Subset => "subset trafficPolicy",
            Origin::SubsetPortLevel => "subset trafficPolicy.portLevelSettings",
        }
    }
}

/// The four fields Istio replaces whole at each level (no deep merge), with their origin.
#[derive(Debug, Clone, Default)]
pub struct Effective<'a> {
    pub load_balancer: (Option<&'a LoadBalancerSettings>, Origin),
    pub connection_pool: (Option<&'a ConnectionPoolSettings>, Origin),
    pub outlier_detection: (Option<&'a OutlierDetection>, Origin),
    pub tls: (Option<&'a sluice_api::istio::ClientTlsSettings>, Origin),
}

impl<'a> Effective<'a> {
    /// Istio's merge for a cluster on `port`: a top-level port-level entry replaces all four
    /// top-level fields (unset ones fall back to defaults); each field the subset sets replaces
    /// that field; a subset's port-level entry replaces all four again.
    pub fn resolve(
        top: Option<&'a TrafficPolicy>,
        subset: Option<&'a TrafficPolicy>,
        port: u32,
    ) -> Effective<'a> {
        let mut e = Effective::default();
        if let Some(tp) = top {
            match port_entry(tp, port) {
                Some(p) => e.replace_all(p, Origin::PortLevel),
                None => e.take_set(tp, Origin::TopLevel),
            }
        }
        if let Some(tp) = subset {
            e.take_set(tp, Origin::Subset);
            if let Some(p) = port_entry(tp, port) {
                e.replace_all(p, Origin::SubsetPortLevel);
            }
        }
        e
    }

    fn replace_all(&mut self, p: &'a PortTrafficPolicy, o: Origin) {
        self.load_balancer = (p.load_balancer.as_ref(), o);
        self.connection_pool = (p.connection_pool.as_ref(), o);
        self.outlier_detection = (p.outlier_detection.as_ref(), o);
        self.tls = (p.tls.as_ref(), o);
    }

    fn take_set(&mut self, tp: &'a TrafficPolicy, o: Origin) {
        if let Some(v) = &tp.load_balancer {
            self.load_balancer = (Some(v), o);
        }
        if let Some(v) = &tp.connection_pool {
            self.connection_pool = (Some(v), o);
        }
        if let Some(v) = &tp.outlier_detection {
            self.outlier_detection = (Some(v), o);
        }
        if let Some(v) = &tp.tls {
            self.tls = (Some(v), o);
        }
    }
}

fn port_entry(tp: &TrafficPolicy, port: u32) -> Option<&PortTrafficPolicy> {
    tp.port_level_settings
        .iter()
        .find(|p| p.port.as_ref().and_then(|x| x.number) == Some(port))
}

/// A cluster's traffic policy besides `simple` and `tls` (kept on the cluster itself).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterPolicy {
    pub pool: ConnectionPool,
    pub outlier: Option<Outlier>,
    pub hash: Option<ConsistentHash>,
    /// The instance's locality when endpoints are prioritised by it (locality failover).
    pub locality: Option<String>,
    /// Where `loadBalancer`, `connectionPool` and `outlierDetection` came from.
    pub origins: [Origin; 3],
}

impl ClusterPolicy {
    pub fn from_effective(e: &Effective<'_>) -> ClusterPolicy {
        ClusterPolicy {
            pool: ConnectionPool::from_istio(e.connection_pool.0),
            outlier: e.outlier_detection.0.map(Outlier::from_istio),
            hash: e
                .load_balancer
                .0
                .and_then(|l| l.consistent_hash.as_ref())
                .and_then(ConsistentHash::from_istio),
            locality: None,
            origins: [
                e.load_balancer.1,
                e.connection_pool.1,
                e.outlier_detection.1,
            ],
        }
    }
}

impl ClusterPolicy {
    /// The effective policy in words, one line per field with where it came from; `simple` is
    /// the cluster's balancer name (`LEAST_REQUEST`…), used when nothing hashes.
    pub fn describe(&self, simple: &str) -> Vec<String> {
        let [lb, pool, outlier] = self.origins.map(Origin::as_str);
        let balancer = match &self.hash {
            None => simple.to_string(),
            Some(h) => {
                let key = match &h.key {
                    HashKey::Header(n) => format!("header {n}"),
                    HashKey::Cookie { name, ttl, .. } => match ttl {
                        Some(t) => format!("cookie {name} (set when absent, ttl {t:?})"),
                        None => format!("cookie {name}"),
                    },
                    HashKey::SourceIp => "source IP".into(),
                    HashKey::QueryParameter(q) => format!("query parameter {q}"),
                };
                let table = match h.table {
                    HashTable::RingHash { minimum_ring_size } => {
                        format!("ring hash, minimum {minimum_ring_size} points")
                    }
                    HashTable::Maglev { table_size } => format!("maglev, table {table_size}"),
                };
                format!("consistentHash by {key}, {table}")
            }
        };
        let p = &self.pool;
        let mut limits = Vec::new();
        let mut put = |name: &str, v: u32| {
            if v != UNLIMITED {
                limits.push(format!("{name} {v}"));
            }
        };
        put("maxConnections", p.max_connections);
        put("http1MaxPendingRequests", p.max_pending);
        put("http2MaxRequests", p.max_requests);
        put(
            "maxRequestsPerConnection",
            p.max_requests_per_connection.unwrap_or(UNLIMITED),
        );
        put("maxRetries", p.max_retries);
        if limits.is_empty() {
            limits.push("no limits".into());
        }
        if let Some(t) = p.connect_timeout {
            limits.push(format!("connectTimeout {t:?}"));
        }
        limits.push(format!("tcp idleTimeout {:?}", p.tcp_idle_timeout));
        let outlier_text = match &self.outlier {
            None => "off".to_string(),
            Some(o) => {
                let opt = |v: Option<u32>| v.map_or("off".to_string(), |v| v.to_string());
                format!(
                    "consecutive5xxErrors {}, consecutiveGatewayErrors {}, interval {:?}, baseEjectionTime {:?}, maxEjectionPercent {}, minHealthPercent {}{}",
                    opt(o.consecutive_5xx),
                    opt(o.consecutive_gateway),
                    o.interval,
                    o.base_ejection_time,
                    o.max_ejection_percent,
                    o.min_health_percent,
                    if o.split_local_origin {
                        format!(", consecutiveLocalOriginFailures {}", opt(o.consecutive_local_origin))
                    } else {
                        String::new()
                    }
                )
            }
        };
        let mut out = vec![
            format!("loadBalancer ({lb}): {balancer}"),
            format!("connectionPool ({pool}): {}", limits.join(", ")),
            format!("outlierDetection ({outlier}): {outlier_text}"),
        ];
        if let Some(here) = &self.locality {
            out.push(format!(
                "locality failover ({lb}): endpoints by priority from {here}"
            ));
        }
        out
    }
}

/// Whether endpoints are prioritised by locality (Istio's locality failover): the instance has a
/// locality, the cluster has outlier detection (Istio's rule: without it nothing would ever fail
/// over), and `localityLbSetting` is neither disabled nor a `distribute` (not implemented; warned).
pub fn locality_failover<'a>(
    here: Option<&'a str>,
    e: &Effective<'a>,
) -> Option<(&'a str, &'a [LocalityFailover])> {
    let here = here.filter(|h| !h.is_empty())?;
    e.outlier_detection.0?;
    let setting = e
        .load_balancer
        .0
        .and_then(|l| l.locality_lb_setting.as_ref());
    match setting {
        Some(s) if s.enabled == Some(false) || !s.distribute.is_empty() => None,
        Some(s) => Some((here, &s.failover)),
        None => Some((here, &[])),
    }
}

/// Istio's failover priority of an endpoint at `there` for an instance at `here` (both
/// `region/zone/subzone`): 0 same subzone, 1 same zone, 2 same region, 3 another region, 4 a
/// region other than the one a `failover` rule from ours names.
pub fn locality_priority(here: &str, there: &str, failover: &[LocalityFailover]) -> u32 {
    let mut h = here.split('/');
    let mut t = there.split('/');
    let (hr, tr) = (h.next().unwrap_or(""), t.next().unwrap_or(""));
    if hr != tr || hr.is_empty() {
        let redirected = failover
            .iter()
            .find(|f| f.from.as_deref() == Some(hr))
            .is_some_and(|f| f.to.as_deref() != Some(tr));
        return if redirected { 4 } else { 3 };
    }
    if h.next().unwrap_or("") != t.next().unwrap_or("") {
        return 2;
    }
    if h.next().unwrap_or("") != t.next().unwrap_or("") {
        return 1;
    }
    0
}

/// Priorities renumbered 0, 1, 2… in order, as Istio compacts them.
pub fn compact(priorities: &mut [u32]) {
    let mut distinct: Vec<u32> = priorities.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    for p in priorities.iter_mut() {
        *p = distinct.binary_search(p).expect("present") as u32;
    }
}

/// `connectionPool`, with Envoy's circuit-breaker defaults as Istio leaves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPool {
    /// Open connections to the cluster's endpoints (`tcp.maxConnections`).
    pub max_connections: u32,
    /// `None`: the gateway's `--connect-timeout` (10 s, Istio's default).
    pub connect_timeout: Option<Duration>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// TCP proxying: no bytes either way for this long closes the connection.
    pub tcp_idle_timeout: Duration,
    /// A connection is not reused after this long (`tcp.maxConnectionDuration`).
    pub max_connection_duration: Option<Duration>,
    /// Requests waiting for a connection (`http.http1MaxPendingRequests`).
    pub max_pending: u32,
    /// Requests in flight to the cluster (`http.http2MaxRequests`; Envoy applies it to every
    /// protocol).
    pub max_requests: u32,
    /// `http.maxRequestsPerConnection`; `None`: unlimited.
    pub max_requests_per_connection: Option<u32>,
    /// Retries in flight to the cluster (`http.maxRetries`).
    pub max_retries: u32,
    /// Idle upstream connections are closed after this long (`http.idleTimeout`); `None`: the
    /// gateway's own pool setting.
    pub idle_timeout: Option<Duration>,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool {
            max_connections: UNLIMITED,
            connect_timeout: None,
            tcp_keepalive: None,
            tcp_idle_timeout: DEFAULT_TCP_IDLE,
            max_connection_duration: None,
            max_pending: UNLIMITED,
            max_requests: UNLIMITED,
            max_requests_per_connection: None,
            max_retries: UNLIMITED,
            idle_timeout: None,
        }
    }
}

/// TCP keepalive probes; unset fields keep the operating system's values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

/// Istio's rule for limits: a value of 0 or less is "not set".
fn limit(v: Option<i32>) -> u32 {
    v.filter(|v| *v > 0).map_or(UNLIMITED, |v| v as u32)
}

fn duration(d: Option<sluice_api::Duration>) -> Option<Duration> {
    d.map(|d| d.as_std()).filter(|d| !d.is_zero())
}

impl ConnectionPool {
    pub fn from_istio(p: Option<&ConnectionPoolSettings>) -> ConnectionPool {
        let mut out = ConnectionPool::default();
        let Some(p) = p else { return out };
        if let Some(tcp) = &p.tcp {
            out.max_connections = limit(tcp.max_connections);
            out.connect_timeout = duration(tcp.connect_timeout);
            out.tcp_keepalive = tcp.tcp_keepalive.as_ref().map(|k| TcpKeepalive {
                probes: k.probes.filter(|p| *p > 0),
                time: duration(k.time),
                interval: duration(k.interval),
            });
            out.tcp_idle_timeout = duration(tcp.idle_timeout).unwrap_or(DEFAULT_TCP_IDLE);
            out.max_connection_duration = duration(tcp.max_connection_duration);
        }
        if let Some(http) = &p.http {
            out.max_pending = limit(http.http1_max_pending_requests);
            out.max_requests = limit(http.http2_max_requests);
            out.max_requests_per_connection = http
                .max_requests_per_connection
                .filter(|v| *v > 0)
                .map(|v| v as u32);
            out.max_retries = limit(http.max_retries);
            out.idle_timeout = duration(http.idle_timeout);
        }
        out
    }
}

/// `outlierDetection` as Istio configures Envoy: consecutive-error ejection only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlier {
    /// Ejects after this many 5xx in a row (`None`: disabled, `consecutive5xxErrors: 0`).
    pub consecutive_5xx: Option<u32>,
    /// Ejects after this many 502/503/504 in a row; off unless set.
    pub consecutive_gateway: Option<u32>,
    /// Connect failures, resets and timeouts count on their own (`splitExternalLocalOriginErrors`).
    pub split_local_origin: bool,
    /// With `split_local_origin`: ejects after this many local-origin failures in a row.
    pub consecutive_local_origin: Option<u32>,
    pub interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints, ejections are ignored (panic); 0 disables it.
    pub min_health_percent: u32,
}

impl Outlier {
    pub fn from_istio(o: &OutlierDetection) -> Outlier {
        let enabled = |v: Option<u32>| v.filter(|v| *v > 0);
        let mut out = Outlier {
            consecutive_5xx: match o.consecutive_5xx_errors {
                Some(v) => enabled(Some(v)),
                None => Some(5),
            },
            consecutive_gateway: enabled(o.consecutive_gateway_errors),
            split_local_origin: o.split_external_local_origin_errors.unwrap_or(false),
            consecutive_local_origin: o
                .consecutive_local_origin_failures
                .map_or(Some(5), |v| enabled(Some(v))),
            interval: duration(o.interval).unwrap_or(Duration::from_secs(10)),
            base_ejection_time: duration(o.base_ejection_time).unwrap_or(Duration::from_secs(30)),
            max_ejection_percent: o
                .max_ejection_percent
                .filter(|p| *p > 0)
                .map_or(10, |p| p.min(100) as u32),
            min_health_percent: o.min_health_percent.unwrap_or(0).clamp(0, 100) as u32,
        };
        // The deprecated `consecutiveErrors` counts gateway errors only (Istio's mapping).
        if let Some(n) = o.consecutive_errors.filter(|n| *n > 0) {
            out.consecutive_gateway = Some(n as u32);
            out.consecutive_5xx = None;
        }
        out
    }

    /// How long the `n`th ejection of an endpoint lasts: base × n, capped as Envoy caps it.
    pub fn ejection_time(&self, n: u32) -> Duration {
        (self.base_ejection_time * n.max(1)).min(MAX_EJECTION_TIME.max(self.base_ejection_time))
    }
}

/// `loadBalancer.consistentHash`: what a request is hashed by, and onto what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistentHash {
    pub key: HashKey,
    pub table: HashTable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(HeaderName),
    /// With a `ttl`, the gateway sets the cookie when the request has none.
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashTable {
    RingHash { minimum_ring_size: u64 },
    Maglev { table_size: u64 },
}

impl ConsistentHash {
    /// `None` when no key is given (validation reports it).
    pub fn from_istio(c: &ConsistentHashLb) -> Option<ConsistentHash> {
        let key = if let Some(h) = &c.http_header_name {
            HashKey::Header(HeaderName::try_from(h.to_ascii_lowercase()).ok()?)
        } else if let Some(cookie) = &c.http_cookie {
            HashKey::Cookie {
                name: cookie.name.clone()?,
                path: cookie.path.clone().filter(|p| !p.is_empty()),
                ttl: cookie.ttl.map(|d| d.as_std()),
            }
        } else if c.use_source_ip == Some(true) {
            HashKey::SourceIp
        } else if let Some(q) = &c.http_query_parameter_name {
            HashKey::QueryParameter(q.clone())
        } else {
            return None;
        };
        // Istio uses maglev unless the rule asks for a ring (or sets the deprecated ring size).
        let table = match (&c.ring_hash, &c.maglev, c.minimum_ring_size) {
            (Some(r), _, _) => HashTable::RingHash {
                minimum_ring_size: r
                    .minimum_ring_size
                    .filter(|s| *s > 0)
                    .unwrap_or(DEFAULT_RING_SIZE),
            },
            (None, None, Some(s)) if s > 0 => HashTable::RingHash {
                minimum_ring_size: s,
            },
            (_, Some(m), _) => HashTable::Maglev {
                table_size: m
                    .table_size
                    .filter(|s| *s > 0)
                    .unwrap_or(DEFAULT_MAGLEV_TABLE),
            },
            _ => HashTable::Maglev {
                table_size: DEFAULT_MAGLEV_TABLE,
            },
        };
        Some(ConsistentHash { key, table })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_api::istio::PortSelector;

    fn pool(max: i32) -> Option<ConnectionPoolSettings> {
        Some(ConnectionPoolSettings {
            tcp: Some(sluice_api::istio::TcpSettings {
                max_connections: Some(max),
                ..Default::default()
            }),
            http: None,
        })
    }

    fn outlier() -> Option<OutlierDetection> {
        Some(OutlierDetection::default())
    }

    #[test]
    fn subset_fields_replace_whole_and_port_level_replaces_all_four() {
        let top = TrafficPolicy {
            connection_pool: pool(10),
            outlier_detection: outlier(),
            port_level_settings: vec![PortTrafficPolicy {
                port: Some(PortSelector { number: Some(9090) }),
                connection_pool: pool(3),
                ..Default::default()
            }],
            ..Default::default()
        };
        let subset = TrafficPolicy {
            connection_pool: pool(20),
            ..Default::default()
        };
        // Top level only.
        let e = Effective::resolve(Some(&top), None, 80);
        assert_eq!(e.connection_pool.1, Origin::TopLevel);
        assert_eq!(e.outlier_detection.1, Origin::TopLevel);
        // The port-level entry replaces the outlier detection too (with nothing).
        let e = Effective::resolve(Some(&top), None, 9090);
        assert_eq!(
            ConnectionPool::from_istio(e.connection_pool.0).max_connections,
            3
        );
        assert_eq!(e.outlier_detection, (None, Origin::PortLevel));
        // The subset's pool wins; the rest is inherited.
        let e = Effective::resolve(Some(&top), Some(&subset), 80);
        assert_eq!(
            ConnectionPool::from_istio(e.connection_pool.0).max_connections,
            20
        );
        assert_eq!(e.connection_pool.1, Origin::Subset);
        assert_eq!(e.outlier_detection.1, Origin::TopLevel);
    }

    #[test]
    fn locality_priorities() {
        let here = "us-east/a/1";
        assert_eq!(locality_priority(here, "us-east/a/1", &[]), 0);
        assert_eq!(locality_priority(here, "us-east/a/2", &[]), 1);
        assert_eq!(locality_priority(here, "us-east/b/1", &[]), 2);
        assert_eq!(locality_priority(here, "eu-west/a/1", &[]), 3);
        assert_eq!(locality_priority(here, "", &[]), 3);
        let to_eu = [LocalityFailover {
            from: Some("us-east".into()),
            to: Some("eu-west".into()),
        }];
        assert_eq!(locality_priority(here, "eu-west/x", &to_eu), 3);
        assert_eq!(locality_priority(here, "us-west/x", &to_eu), 4);
        let mut p = vec![4, 0, 2, 4];
        compact(&mut p);
        assert_eq!(p, [2, 0, 1, 2]);
    }

    #[test]
    fn istio_defaults() {
        let p = ConnectionPool::from_istio(None);
        assert_eq!((p.max_connections, p.max_pending), (UNLIMITED, UNLIMITED));
        assert_eq!(p.connect_timeout, None);
        let o = Outlier::from_istio(&OutlierDetection::default());
        assert_eq!(o.consecutive_5xx, Some(5));
        assert_eq!(o.consecutive_gateway, None);
        assert_eq!(
            (o.interval, o.base_ejection_time),
            (Duration::from_secs(10), Duration::from_secs(30))
        );
        assert_eq!((o.max_ejection_percent, o.min_health_percent), (10, 0));
        assert_eq!(o.ejection_time(3), Duration::from_secs(90));
        assert_eq!(o.ejection_time(20), MAX_EJECTION_TIME);
        let h = ConsistentHash::from_istio(&ConsistentHashLb {
            use_source_ip: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(h.table, HashTable::Maglev { table_size: 65537 });
    }
}

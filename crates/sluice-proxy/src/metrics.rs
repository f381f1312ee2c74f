//! Istio's standard metrics (`istio_requests_total`, the request duration and size histograms,
//! the TCP byte and connection counters) with Istio's names, labels and buckets. A request pays
//! a few atomic adds: series are plain atomics found by a lock-free lookup in its cluster's
//! list, label sets are written out only when Prometheus scrapes (`prometheus-client`).
use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use sluice_compile::snapshot::Cluster;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Envoy's default histogram buckets, which Istio keeps for durations (ms) and sizes (bytes).
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Envoy's response flags, spelled as Envoy spells them so Istio users can grep for them; a
/// request may carry several (a delayed request that then timed out: `DI,UT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    pub const NONE: Flags = Flags(0);
    /// No route.
    pub const NR: Flags = Flags(1);
    /// No cluster (unknown host or subset, unusable backend).
    pub const NC: Flags = Flags(1 << 1);
    /// No healthy upstream endpoint.
    pub const UH: Flags = Flags(1 << 2);
    /// Upstream connection failure.
    pub const UF: Flags = Flags(1 << 3);
    /// Upstream connection terminated before or while responding.
    pub const UC: Flags = Flags(1 << 4);
    /// Upstream request timeout.
    pub const UT: Flags = Flags(1 << 5);
    /// Upstream overflow: a circuit breaker of the cluster is open.
    pub const UO: Flags = Flags(1 << 6);
    /// The retry circuit breaker refused a retry (`maxRetries`).
    pub const URX: Flags = Flags(1 << 7);
    /// Fault injected: abort.
    pub const FI: Flags = Flags(1 << 8);
    /// Fault injected: delay.
    pub const DI: Flags = Flags(1 << 9);
    /// Downstream protocol error.
    pub const DPE: Flags = Flags(1 << 10);
    /// Upstream protocol error.
    pub const UPE: Flags = Flags(1 << 11);
    /// Shed by overload protection.
    pub const OM: Flags = Flags(1 << 12);
    /// Stream idle timeout: the request body stopped arriving (408).
    pub const SI: Flags = Flags(1 << 13);
    /// Downstream connection terminated before the response ended.
    pub const DC: Flags = Flags(1 << 14);
    /// A request for a host the connection's TLS server does not serve (421); Envoy logs
    /// its own detail, no flag, so nothing is printed for it.
    pub const MISDIRECTED: Flags = Flags(1 << 15);

    /// In Envoy's order of flags, as its access log prints them.
    const NAMES: [(Flags, &'static str); 15] = [
        (Flags::UH, "UH"),
        (Flags::UF, "UF"),
        (Flags::UO, "UO"),
        (Flags::NR, "NR"),
        (Flags::DI, "DI"),
        (Flags::FI, "FI"),
        (Flags::OM, "OM"),
        (Flags::UT, "UT"),
        (Flags::UC, "UC"),
        (Flags::URX, "URX"),
        (Flags::SI, "SI"),
        (Flags::DPE, "DPE"),
        (Flags::UPE, "UPE"),
        (Flags::NC, "NC"),
        (Flags::DC, "DC"),
    ];

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 & !Flags::MISDIRECTED.0 == 0
    }

    /// `-` for none, else the flags joined by commas.
    pub fn write(self, out: &mut String) {
        if self.is_empty() {
            out.push('-');
            return;
        }
        let mut first = true;
        for (f, name) in Flags::NAMES {
            if self.contains(f) {
                if !first {
                    out.push(',');
                }
                out.push_str(name);
                first = false;
            }
        }
    }

    pub fn to_label(self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// A distribution over `BUCKETS`: one counter per bucket.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// In thousandths of the unit, so durations keep their microseconds.
    sum_milli: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: f64) {
        let i = BUCKETS.partition_point(|b| *b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_milli
            .fetch_add((value * 1000.0) as u64, Ordering::Relaxed);
    }

    fn copy(&self) -> Histogram {
        let h = Histogram::default();
        for (to, from) in h.buckets.iter().zip(&self.buckets) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        h.sum_milli
            .store(self.sum_milli.load(Ordering::Relaxed), Ordering::Relaxed);
        h
    }

    /// The encoder makes the per-bucket counts cumulative.
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0); BUCKETS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let upper = BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *slot = (upper, self.buckets[i].load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_milli.load(Ordering::Relaxed) as f64 / 1000.0;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// HTTP/gRPC requests of one label set.
#[derive(Debug, Default)]
struct HttpSeries {
    requests: AtomicU64,
    duration_ms: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl HttpSeries {
    fn copy(&self) -> HttpSeries {
        HttpSeries {
            requests: AtomicU64::new(self.requests.load(Ordering::Relaxed)),
            duration_ms: self.duration_ms.copy(),
            request_bytes: self.request_bytes.copy(),
            response_bytes: self.response_bytes.copy(),
        }
    }
}

/// TCP connections of one label set.
#[derive(Debug, Default)]
struct TcpSeries {
    opened: AtomicU64,
    closed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

/// The label set of most requests.
const OK: HttpKey = HttpKey {
    code: 200,
    flags: Flags::NONE,
    grpc: false,
    grpc_status: None,
};

/// What varies per request within a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpKey {
    /// 0 when no response was sent (the client went away).
    pub code: u16,
    pub flags: Flags,
    pub grpc: bool,
    /// `grpc-status` of a gRPC response.
    pub grpc_status: Option<u16>,
}

/// One request, as the metrics record it.
#[derive(Debug, Clone, Copy)]
pub struct HttpSample {
    pub key: HttpKey,
    pub duration: Duration,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// A small map read without locks: readers scan the current list, a writer (a label set seen
/// for the first time) copies it. A cluster sees a handful of label sets.
struct SeriesMap<K, V> {
    list: ArcSwap<Vec<(K, Arc<V>)>>,
    write: Mutex<()>,
}

impl<K, V> Default for SeriesMap<K, V> {
    fn default() -> Self {
        SeriesMap {
            list: ArcSwap::from_pointee(Vec::new()),
            write: Mutex::default(),
        }
    }
}

impl<K: Copy + PartialEq, V: Default> SeriesMap<K, V> {
    fn with(&self, key: K, f: impl FnOnce(&V)) {
        if let Some((_, v)) = self.list.load().iter().find(|(k, _)| *k == key) {
            return f(v);
        }
        f(&self.insert(key))
    }

    /// The series of `key`, to keep (a TCP connection counts its bytes on it as they pass).
    fn get(&self, key: K) -> Arc<V> {
        if let Some((_, v)) = self.list.load().iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        self.insert(key)
    }

    /// The rare path: a label set seen for the first time (or raced for).
    fn insert(&self, key: K) -> Arc<V> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.list.load_full();
        if let Some((_, v)) = current.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let v = Arc::new(V::default());
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push((key, v.clone()));
        self.list.store(Arc::new(next));
        v
    }

    fn snapshot(&self) -> Arc<Vec<(K, Arc<V>)>> {
        self.list.load_full()
    }
}

/// Who a cluster's requests go to, as Istio's `destination_*` labels say it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    service: String,
    service_name: String,
    service_namespace: String,
    version: String,
    app: String,
}

impl Destination {
    const UNKNOWN: &'static str = "unknown";

    fn unknown() -> Destination {
        let u = || Destination::UNKNOWN.to_string();
        Destination {
            service: u(),
            service_name: u(),
            service_namespace: u(),
            version: u(),
            app: u(),
        }
    }

    fn of(c: &Cluster) -> Destination {
        let or_unknown = |s: &str| {
            if s.is_empty() {
                Destination::UNKNOWN.to_string()
            } else {
                s.to_string()
            }
        };
        let label = |k: &str| or_unknown(c.destination.labels.get(k).map_or("", |v| v.as_str()));
        Destination {
            service: or_unknown(&c.host),
            service_name: or_unknown(&c.destination.name),
            service_namespace: or_unknown(&c.destination.namespace),
            version: label("version"),
            app: label("app"),
        }
    }
}

/// A cluster's series; the same object across reloads while the cluster's labels stay.
pub struct ClusterStats {
    cluster: String,
    destination: Destination,
    /// Most requests: 200, no flags, plain HTTP; kept out of the list so they skip its lookup.
    ok: HttpSeries,
    http: SeriesMap<HttpKey, HttpSeries>,
    tcp: SeriesMap<Flags, TcpSeries>,
    /// Requests and connections a circuit breaker refused (flag UO).
    overflows: AtomicU64,
}

impl std::fmt::Debug for ClusterStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStats")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl ClusterStats {
    fn new(cluster: String, destination: Destination) -> ClusterStats {
        ClusterStats {
            cluster,
            destination,
            ok: HttpSeries::default(),
            http: SeriesMap::default(),
            tcp: SeriesMap::default(),
            overflows: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.cluster
    }

    /// One finished request.
    pub fn request(&self, s: &HttpSample) {
        if s.key.flags.contains(Flags::UO) {
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
        let count = |series: &HttpSeries| {
            series.requests.fetch_add(1, Ordering::Relaxed);
            series
                .duration_ms
                .observe(s.duration.as_micros() as f64 / 1000.0);
            series.request_bytes.observe(s.request_bytes as f64);
            series.response_bytes.observe(s.response_bytes as f64);
        };
        if s.key == OK {
            count(&self.ok)
        } else {
            self.http.with(s.key, count)
        }
    }

    /// Every HTTP series with requests, with its key.
    fn http_series(&self) -> Vec<(HttpKey, Arc<HttpSeries>)> {
        let mut all: Vec<_> = self.http.snapshot().iter().cloned().collect();
        if self.ok.requests.load(Ordering::Relaxed) > 0 {
            // Encoded from a copy: the inline series is not behind an Arc.
            all.insert(0, (OK, Arc::new(self.ok.copy())));
        }
        all
    }

    pub fn tcp_opened(&self, flags: Flags) {
        if flags.contains(Flags::UO) {
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
        self.tcp
            .with(flags, |s| _ = s.opened.fetch_add(1, Ordering::Relaxed));
    }

    pub fn tcp_closed(&self, flags: Flags) {
        self.tcp
            .with(flags, |s| _ = s.closed.fetch_add(1, Ordering::Relaxed));
    }

    /// Where an open TCP connection counts its bytes as they pass, found once.
    pub fn tcp_bytes(&self) -> TcpBytes {
        TcpBytes(self.tcp.get(Flags::NONE))
    }

    /// Requests so far, whatever their outcome.
    pub fn requests(&self) -> u64 {
        self.http
            .snapshot()
            .iter()
            .map(|(_, s)| s.requests.load(Ordering::Relaxed))
            .sum::<u64>()
            + self.ok.requests.load(Ordering::Relaxed)
    }
}

/// The byte counters of one open TCP connection's series.
pub struct TcpBytes(Arc<TcpSeries>);

impl TcpBytes {
    /// `received` from the client, `sent` to it.
    pub fn add(&self, received: u64, sent: u64) {
        self.0.received.fetch_add(received, Ordering::Relaxed);
        self.0.sent.fetch_add(sent, Ordering::Relaxed);
    }
}

/// What Istio's metrics say of this gateway (`source_*`), from its own labels.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    pub canonical_service: String,
    pub canonical_revision: String,
    /// Istio's cluster id (`Kubernetes` unless a multicluster mesh names it).
    pub cluster: String,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "sluice".into(),
            namespace: "istio-system".into(),
            app: "unknown".into(),
            version: "unknown".into(),
            canonical_service: "sluice".into(),
            canonical_revision: "latest".into(),
            cluster: "Kubernetes".into(),
        }
    }
}

impl Workload {
    /// As Istio reads a workload's labels: `app`/`version`, and the canonical service and
    /// revision from their own labels, else `app.kubernetes.io/*`, else `app`/`version`.
    pub fn from_labels(
        name: Option<&str>,
        namespace: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Workload {
        let get = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
        let app = get(&["app"]);
        let name = name
            .map(str::to_string)
            .or(app.clone())
            .unwrap_or_else(|| "sluice".into());
        Workload {
            canonical_service: get(&[
                "service.istio.io/canonical-name",
                "app.kubernetes.io/name",
                "app",
            ])
            .unwrap_or_else(|| name.clone()),
            canonical_revision: get(&[
                "service.istio.io/canonical-revision",
                "app.kubernetes.io/version",
                "version",
            ])
            .unwrap_or_else(|| "latest".into()),
            app: app.unwrap_or_else(|| "unknown".into()),
            version: get(&["version"]).unwrap_or_else(|| "unknown".into()),
            namespace: namespace.to_string(),
            name,
            cluster: "Kubernetes".into(),
        }
    }
}

/// Every cluster's series, by cluster name, kept while the process lives (Prometheus counters
/// must not go back when a reload removes and re-adds a cluster).
pub struct Metrics {
    source: Workload,
    clusters: Mutex<HashMap<String, Arc<ClusterStats>>>,
    /// Requests with no cluster (no route, local replies before routing).
    unknown: Arc<ClusterStats>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(source: Workload) -> Metrics {
        Metrics {
            source,
            clusters: Mutex::default(),
            unknown: Arc::new(ClusterStats::new(String::new(), Destination::unknown())),
        }
    }

    /// The series of `cluster` (new when its labels changed).
    pub fn cluster(&self, cluster: &Cluster) -> Arc<ClusterStats> {
        let destination = Destination::of(cluster);
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        match clusters.get(&cluster.name) {
            Some(s) if s.destination == destination => s.clone(),
            _ => {
                let s = Arc::new(ClusterStats::new(cluster.name.clone(), destination));
                clusters.insert(cluster.name.clone(), s.clone());
                s
            }
        }
    }

    /// Where requests and connections without a cluster are counted.
    pub fn unknown(&self) -> &Arc<ClusterStats> {
        &self.unknown
    }

    /// Requests so far by cluster name.
    pub fn requests_by_cluster(&self) -> HashMap<String, u64> {
        self.all()
            .iter()
            .filter(|s| !s.cluster.is_empty())
            .map(|s| (s.cluster.clone(), s.requests()))
            .collect()
    }

    fn all(&self) -> Vec<Arc<ClusterStats>> {
        let clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = clusters.values().cloned().collect();
        all.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        all.push(self.unknown.clone());
        all
    }

    /// The labels every Istio metric carries: reporter, source and destination.
    fn common<'a>(&'a self, d: &'a Destination) -> Vec<(&'static str, &'a str)> {
        let s = &self.source;
        vec![
            ("reporter", "source"),
            ("source_workload", &s.name),
            ("source_canonical_service", &s.canonical_service),
            ("source_canonical_revision", &s.canonical_revision),
            ("source_workload_namespace", &s.namespace),
            ("source_principal", "unknown"),
            ("source_app", &s.app),
            ("source_version", &s.version),
            ("source_cluster", &s.cluster),
            ("destination_workload", "unknown"),
            ("destination_workload_namespace", "unknown"),
            ("destination_principal", "unknown"),
            ("destination_app", &d.app),
            ("destination_version", &d.version),
            ("destination_service", &d.service),
            ("destination_canonical_service", "unknown"),
            ("destination_canonical_revision", "latest"),
            ("destination_service_name", &d.service_name),
            ("destination_service_namespace", &d.service_namespace),
            ("destination_cluster", "unknown"),
        ]
    }

    fn encode_http(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Pick = fn(&HttpSeries) -> Series<'_>;
        let families: [(&str, &str, MetricType, Pick); 4] = [
            (
                "istio_requests",
                "Requests, by response code and flags.",
                MetricType::Counter,
                |s| Series::Counter(&s.requests),
            ),
            (
                "istio_request_duration_milliseconds",
                "Request duration.",
                MetricType::Histogram,
                |s| Series::Histogram(&s.duration_ms),
            ),
            (
                "istio_request_bytes",
                "Request size: headers and body.",
                MetricType::Histogram,
                |s| Series::Histogram(&s.request_bytes),
            ),
            (
                "istio_response_bytes",
                "Response size: headers and body.",
                MetricType::Histogram,
                |s| Series::Histogram(&s.response_bytes),
            ),
        ];
        let all = self.all();
        let listed: Vec<_> = all.iter().map(|c| (c, c.http_series())).collect();
        for (name, help, kind, pick) in families {
            if listed.iter().all(|(_, l)| l.is_empty()) {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for (c, list) in &listed {
                for (key, series) in list {
                    let code = key.code.to_string();
                    let flags = key.flags.to_label();
                    let grpc_status = key.grpc_status.map(|g| g.to_string()).unwrap_or_default();
                    let mut labels = self.common(&c.destination);
                    labels.extend([
                        ("request_protocol", if key.grpc { "grpc" } else { "http" }),
                        ("response_code", code.as_str()),
                        ("grpc_response_status", grpc_status.as_str()),
                        ("response_flags", flags.as_str()),
                        ("connection_security_policy", "unknown"),
                    ]);
                    pick(series).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn encode_tcp(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Pick = fn(&TcpSeries) -> &AtomicU64;
        let families: [(&str, &str, Pick); 4] = [
            (
                "istio_tcp_sent_bytes",
                "Bytes sent to the client on TCP connections.",
                |s| &s.sent,
            ),
            (
                "istio_tcp_received_bytes",
                "Bytes received from the client on TCP connections.",
                |s| &s.received,
            ),
            (
                "istio_tcp_connections_opened",
                "TCP connections opened.",
                |s| &s.opened,
            ),
            (
                "istio_tcp_connections_closed",
                "TCP connections closed.",
                |s| &s.closed,
            ),
        ];
        let all = self.all();
        let listed: Vec<_> = all.iter().map(|c| (c, c.tcp.snapshot())).collect();
        if listed.iter().all(|(_, l)| l.is_empty()) {
            return Ok(());
        }
        for (name, help, pick) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (c, list) in &listed {
                for (flags, series) in list.iter() {
                    let flags = flags.to_label();
                    let mut labels = self.common(&c.destination);
                    labels.extend([
                        ("request_protocol", "tcp"),
                        ("response_flags", flags.as_str()),
                        ("connection_security_policy", "unknown"),
                    ]);
                    Series::Counter(pick(series)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn encode_overflows(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "sluice_upstream_overflow",
            "Requests and connections a circuit breaker refused (flag UO), by cluster.",
            None,
            MetricType::Counter,
        )?;
        for c in self.all().iter().filter(|c| !c.cluster.is_empty()) {
            let labels = [("cluster", c.cluster.as_str())];
            Series::Counter(&c.overflows).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// sluice's own metrics of the running gateway, read from its state when scraped.
pub struct Runtime {
    pub(crate) shared: Arc<crate::request::Shared>,
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    pub(crate) max_connections: usize,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Collector for Runtime {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.shared;
        let active = self
            .max_connections
            .saturating_sub(self.connections.available_permits()) as u64;
        let dropped = shared.access_log.as_ref().map_or(0, |l| l.dropped());
        let spans = |f: fn(&crate::trace::Stats) -> &AtomicU64| {
            shared
                .tracer
                .as_ref()
                .map_or(0, |t| f(t.stats()).load(Ordering::Relaxed))
        };
        let scalars: [(&str, &str, MetricType, u64); 7] = [
            (
                "sluice_downstream_connections_active",
                "Client connections open now.",
                MetricType::Gauge,
                active,
            ),
            (
                "sluice_downstream_connections",
                "Client connections accepted.",
                MetricType::Counter,
                shared.accepted.load(Ordering::Relaxed),
            ),
            (
                "sluice_downstream_connections_shed",
                "Client connections shed by the connection limits or overload.",
                MetricType::Counter,
                shared.shed.load(Ordering::Relaxed),
            ),
            (
                "sluice_access_log_dropped",
                "Access-log lines dropped because the writer fell behind.",
                MetricType::Counter,
                dropped,
            ),
            (
                "sluice_trace_spans_exported",
                "Spans the OTLP collector accepted.",
                MetricType::Counter,
                spans(|s| &s.exported),
            ),
            (
                "sluice_trace_spans_failed",
                "Spans in OTLP export requests that failed.",
                MetricType::Counter,
                spans(|s| &s.failed),
            ),
            (
                "sluice_trace_spans_dropped",
                "Spans dropped because the exporter fell behind.",
                MetricType::Counter,
                spans(|s| &s.dropped),
            ),
        ];
        for (name, help, kind, value) in scalars {
            let mut e = encoder.encode_descriptor(name, help, None, kind)?;
            match kind {
                MetricType::Counter => e.encode_counter::<NoLabelSet, _, u64>(&value, None)?,
                _ => e.encode_gauge(&(value as i64))?,
            }
        }
        let dataplane = shared.current.load_full();
        let mut clusters: Vec<_> = dataplane.clusters.values().collect();
        clusters.sort_by(|a, b| a.cluster.name.cmp(&b.cluster.name));
        type Read = fn(&crate::cluster::ClusterRuntime) -> u64;
        let gauges: [(&str, &str, Read); 5] = [
            (
                "sluice_upstream_connections_active",
                "Upstream connections open (HTTP/1.1 pools and TCP routes), by cluster.",
                |c| c.state.connections.get().into(),
            ),
            (
                "sluice_upstream_requests_active",
                "Requests in flight, by cluster.",
                |c| c.state.requests.get().into(),
            ),
            (
                "sluice_upstream_requests_pending",
                "Requests waiting for an upstream connection, by cluster.",
                |c| c.state.pending.get().into(),
            ),
            (
                "sluice_upstream_endpoints",
                "Endpoints with a weight, by cluster.",
                |c| c.endpoints.len() as u64,
            ),
            (
                "sluice_upstream_endpoints_ejected",
                "Endpoints ejected by outlier detection now, by cluster.",
                |c| c.state.ejected.get().into(),
            ),
        ];
        for (name, help, read) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for c in &clusters {
                let labels = [("cluster", c.cluster.name.as_str())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&(read(c) as i64))?;
            }
        }
        Ok(())
    }
}

/// One series' value, encoded the way its family's type asks.
enum Series<'a> {
    Counter(&'a AtomicU64),
    Histogram(&'a Histogram),
}

impl Series<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self {
            Series::Counter(c) => {
                encoder.encode_counter::<NoLabelSet, _, u64>(&c.load(Ordering::Relaxed), None)
            }
            Series::Histogram(h) => h.encode(encoder),
        }
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_http(&mut encoder)?;
        self.encode_tcp(&mut encoder)?;
        self.encode_overflows(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_in_envoys_order() {
        assert_eq!(Flags::NONE.to_label(), "-");
        assert_eq!((Flags::UT | Flags::DI).to_label(), "DI,UT");
        assert_eq!(Flags::MISDIRECTED.to_label(), "-");
    }

    #[test]
    fn histogram_buckets_are_upper_bounds() {
        let h = Histogram::default();
        h.observe(0.5);
        h.observe(0.7);
        h.observe(4_000_000.0);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[1].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[BUCKETS.len()].load(Ordering::Relaxed), 1);
    }
}

//! Access logs as Istio writes them: its default text format (Envoy's operators, in Istio's
//! order) or its JSON format, for HTTP requests and for TCP/TLS connections. A line is
//! formatted where the request ends and handed to a writer thread through a bounded channel:
//! writing never blocks a request, and when the writer falls behind lines are dropped (and
//! counted), as Envoy's buffered access log does under pressure.
use crate::metrics::Flags;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Lines waiting for the writer; beyond it lines are dropped.
const QUEUE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Istio's default `accessLogFormat`.
    Text,
    /// Istio's `accessLogEncoding: JSON`.
    Json,
}

/// Where access-log lines go; cloned into every listener.
#[derive(Clone)]
pub struct AccessLog {
    format: Format,
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Lines to `out` (stdout, a file), written by a thread of their own.
    pub fn new(format: Format, out: Box<dyn Write + Send>) -> AccessLog {
        let (tx, rx) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    // Flush once the queue is empty: a burst is one write.
                    while let Ok(line) = rx.try_recv() {
                        let _ = out.write_all(line.as_bytes());
                    }
                    let _ = out.flush();
                }
            })
            .expect("spawn the access-log writer");
        AccessLog {
            format,
            tx,
            dropped: Arc::default(),
        }
    }

    /// `path` opened for appending; `/dev/stdout` (Istio's default) writes to stdout.
    pub fn open(format: Format, path: &str) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match path {
            "/dev/stdout" | "-" => Box::new(std::io::stdout()),
            "/dev/stderr" => Box::new(std::io::stderr()),
            _ => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        Ok(AccessLog::new(format, out))
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn write(&self, entry: &Entry<'_>) {
        let line = match self.format {
            Format::Text => entry.text(),
            Format::Json => entry.json(),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One request or connection, with the fields of Istio's default format.
#[derive(Debug, Default)]
pub(crate) struct Entry<'a> {
    pub start_time: Option<SystemTime>,
    /// None for TCP connections.
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    /// `HTTP/1.1`, `HTTP/2`; None for TCP.
    pub protocol: Option<&'a str>,
    pub code: u16,
    pub flags: Flags,
    pub details: &'a str,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub duration: Duration,
    pub upstream_service_time: Option<Duration>,
    pub forwarded_for: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub upstream_host: Option<&'a str>,
    pub upstream_cluster: Option<&'a str>,
    pub downstream_local: Option<SocketAddr>,
    pub downstream_remote: Option<SocketAddr>,
    pub server_name: Option<&'a str>,
    pub route_name: Option<&'a str>,
}

impl Entry<'_> {
    /// Istio's default text format.
    fn text(&self) -> String {
        use std::fmt::Write as _;
        let dash = |v: Option<&str>| v.filter(|s| !s.is_empty()).unwrap_or("-").to_string();
        let addr = |a: Option<SocketAddr>| a.map_or("-".to_string(), |a| a.to_string());
        let mut flags = String::new();
        self.flags.write(&mut flags);
        let mut line = String::with_capacity(384);
        let _ = writeln!(
            line,
            "[{}] \"{} {} {}\" {} {} {} - \"-\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} {} {}",
            rfc3339(self.start_time.unwrap_or_else(SystemTime::now)),
            dash(self.method),
            dash(self.path),
            dash(self.protocol),
            self.code,
            flags,
            if self.details.is_empty() { "-" } else { self.details },
            self.bytes_received,
            self.bytes_sent,
            self.duration.as_millis(),
            self.upstream_service_time
                .map_or("-".to_string(), |d| d.as_millis().to_string()),
            dash(self.forwarded_for),
            dash(self.user_agent),
            dash(self.request_id),
            dash(self.authority),
            dash(self.upstream_host),
            dash(self.upstream_cluster),
            addr(self.downstream_local),
            addr(self.downstream_remote),
            dash(self.server_name),
            dash(self.route_name),
        );
        line
    }

    /// Istio's JSON encoding: the same fields by name, absent values as null.
    fn json(&self) -> String {
        let s = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
        let mut flags = String::new();
        self.flags.write(&mut flags);
        let value = serde_json::json!({
            "start_time": rfc3339(self.start_time.unwrap_or_else(SystemTime::now)),
            "method": s(self.method),
            "path": s(self.path),
            "protocol": s(self.protocol),
            "response_code": self.code,
            "response_flags": flags,
            "response_code_details": s(Some(self.details)),
            "connection_termination_details": null,
            "upstream_transport_failure_reason": null,
            "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent,
            "duration": self.duration.as_millis() as u64,
            "upstream_service_time": self.upstream_service_time.map(|d| d.as_millis() as u64),
            "x_forwarded_for": s(self.forwarded_for),
            "user_agent": s(self.user_agent),
            "request_id": s(self.request_id),
            "authority": s(self.authority),
            "upstream_host": s(self.upstream_host),
            "upstream_cluster": s(self.upstream_cluster),
            "upstream_local_address": null,
            "downstream_local_address": self.downstream_local.map(|a| a.to_string()),
            "downstream_remote_address": self.downstream_remote.map(|a| a.to_string()),
            "requested_server_name": s(self.server_name),
            "route_name": s(self.route_name),
        });
        let mut line = value.to_string();
        line.push('\n');
        line
    }
}

/// `2024-05-01T12:00:00.123Z`, Envoy's `%START_TIME%`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day), by Howard Hinnant's civil-from-days (no
/// calendar crate needed; `sluice status` dates objects with it too).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_606_339_578_409);
        assert_eq!(rfc3339(t), "2020-11-25T21:26:18.409Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn text_line_has_istios_fields_in_order() {
        let e = Entry {
            start_time: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_606_339_578_409)),
            method: Some("GET"),
            path: Some("/status/418"),
            protocol: Some("HTTP/1.1"),
            code: 418,
            details: "via_upstream",
            bytes_sent: 135,
            duration: Duration::from_millis(4),
            upstream_service_time: Some(Duration::from_millis(4)),
            user_agent: Some("curl/8"),
            request_id: Some("id-1"),
            authority: Some("httpbin:8000"),
            upstream_host: Some("10.44.1.27:80"),
            upstream_cluster: Some("outbound|8000||httpbin.foo.svc.cluster.local"),
            downstream_local: Some("10.0.45.184:8000".parse().unwrap()),
            downstream_remote: Some("10.44.1.23:46520".parse().unwrap()),
            route_name: Some("default"),
            ..Default::default()
        };
        assert_eq!(
            e.text(),
            "[2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" 0 135 4 4 \"-\" \"curl/8\" \"id-1\" \"httpbin:8000\" \"10.44.1.27:80\" outbound|8000||httpbin.foo.svc.cluster.local - 10.0.45.184:8000 10.44.1.23:46520 - default\n"
        );
        let json: serde_json::Value = serde_json::from_str(&e.json()).unwrap();
        assert_eq!(json["response_code"], 418);
        assert_eq!(json["response_flags"], "-");
        assert_eq!(json["x_forwarded_for"], serde_json::Value::Null);
    }
}

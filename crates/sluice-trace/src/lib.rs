//! OTLP export of the gateway's spans. A task reads the data plane's span queue
//! (`sluice_proxy::trace`), gathers the spans into batches and sends each batch as one OTLP/HTTP
//! protobuf request (`opentelemetry-otlp` over hyper). The data plane never waits for it: when
//! the collector is slow or down the queue fills, and spans are dropped and counted.
//!
//! A crate of its own so the data plane does not depend on the OpenTelemetry SDK: it hands over
//! plain `FinishedSpan`s, and only this crate turns them into OpenTelemetry's types.
#![forbid(unsafe_code)]

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
use opentelemetry::{InstrumentationScope, KeyValue, StringValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use opentelemetry_sdk::Resource;
use sluice_proxy::trace::{FinishedSpan, Spans, Stats, Tracer, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--otlp-endpoint {endpoint}: {reason}")]
    Endpoint {
        endpoint: String,
        reason: &'static str,
    },
    #[error("--otlp-sampling {0}: a ratio from 0.0 to 1.0 is expected")]
    Sampling(f64),
    #[error("cannot build the OTLP exporter: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Where spans go and how they are batched.
#[derive(Debug, Clone)]
pub struct Options {
    /// The collector, `http://host:4318`: OTLP/HTTP, `/v1/traces` appended to the path unless
    /// it ends with it.
    pub endpoint: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Share (0.0 to 1.0) of the requests without a sampling decision that are sampled.
    pub sampling: f64,
    /// Added to every span (Istio's tracing tags: `sluice_proxy::trace::istio_attributes`).
    pub attributes: Vec<(&'static str, String)>,
    /// Spans waiting for export; more are dropped.
    pub queue: usize,
    /// Spans per export request.
    pub batch: usize,
    /// How long a span waits for its batch to fill.
    pub flush_interval: Duration,
    /// How long one export request may take (the exporter's retries included).
    pub timeout: Duration,
}

impl Options {
    /// OpenTelemetry's batch defaults: 2048 spans queued, 512 per request, sent at least every
    /// 5 s; 10 s per request.
    pub fn new(endpoint: impl Into<String>) -> Options {
        Options {
            endpoint: endpoint.into(),
            service_name: "sluice".into(),
            sampling: 1.0,
            attributes: Vec::new(),
            queue: 2048,
            batch: 512,
            flush_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The running export task.
pub struct Exporter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Starts exporting (needs a Tokio runtime). Returns the tracer to give the gateway
/// (`ServerOptions::tracer`) and the exporter to shut down once the gateway has drained.
pub fn start(opts: Options) -> Result<(Tracer, Exporter), Error> {
    if !(0.0..=1.0).contains(&opts.sampling) {
        return Err(Error::Sampling(opts.sampling));
    }
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(&opts.endpoint)?)
        .with_timeout(opts.timeout)
        .build()?;
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(opts.service_name.clone())
            .build(),
    );
    let (tracer, spans) = Tracer::new(opts.sampling, opts.queue);
    let batches = Batches {
        exporter,
        convert: Convert::new(&opts.attributes),
        batch: opts.batch.max(1),
        interval: opts.flush_interval,
    };
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(batches.run(spans, stopped));
    Ok((tracer, Exporter { stop, task }))
}

impl Exporter {
    /// Sends what is queued, then stops; gives up after `within`.
    pub async fn shutdown(self, within: Duration) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(within, self.task).await;
    }
}

/// The OTLP/HTTP traces URL of a collector: `/v1/traces` after the endpoint's path, as the
/// OTLP exporter specification reads `OTEL_EXPORTER_OTLP_ENDPOINT`, unless it is there already.
fn traces_url(endpoint: &str) -> Result<String, Error> {
    let bad = |reason| Error::Endpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported: send to a collector on plain http (a local agent)",
            ))
        }
        _ => return Err(bad("an http:// URL is expected")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let path = uri.path().trim_end_matches('/');
    let suffix = if path.ends_with("/v1/traces") {
        ""
    } else {
        "/v1/traces"
    };
    Ok(format!("http://{authority}{path}{suffix}"))
}

/// Spans into batches, batches to the collector.
struct Batches {
    exporter: opentelemetry_otlp::SpanExporter,
    convert: Convert,
    batch: usize,
    interval: Duration,
}

impl Batches {
    async fn run(self, mut spans: Spans, mut stop: oneshot::Receiver<()>) {
        let stats = spans.stats();
        let mut pending = Vec::with_capacity(self.batch);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => {
                        pending.push(self.convert.span(span));
                        if pending.len() >= self.batch {
                            self.export(&mut pending, &stats).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if !pending.is_empty() {
                        self.export(&mut pending, &stats).await;
                    }
                }
                _ = &mut stop => break,
            }
        }
        // What was queued before the stop goes too.
        while let Some(span) = spans.try_recv() {
            pending.push(self.convert.span(span));
            if pending.len() >= self.batch {
                self.export(&mut pending, &stats).await;
            }
        }
        if !pending.is_empty() {
            self.export(&mut pending, &stats).await;
        }
    }

    /// One export request; the exporter retries what OTLP says is worth retrying, within its
    /// timeout. A failed batch is counted and logged, never queued again.
    async fn export(&self, pending: &mut Vec<SpanData>, stats: &Stats) {
        let batch = std::mem::replace(pending, Vec::with_capacity(self.batch));
        let n = batch.len() as u64;
        match self.exporter.export(batch).await {
            Ok(()) => {
                stats.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(spans = n, error = %e, "OTLP span export failed");
            }
        }
    }
}

/// `FinishedSpan`s as OpenTelemetry's SDK hands spans to exporters.
struct Convert {
    scope: InstrumentationScope,
    /// Every span's own, shared (cloning a value is a reference count).
    attributes: Vec<KeyValue>,
}

impl Convert {
    fn new(attributes: &[(&'static str, String)]) -> Convert {
        Convert {
            scope: InstrumentationScope::builder("sluice")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            attributes: attributes
                .iter()
                .map(|(k, v)| KeyValue::new(*k, Arc::<str>::from(v.as_str())))
                .collect(),
        }
    }

    fn span(&self, s: FinishedSpan) -> SpanData {
        let mut attributes: Vec<KeyValue> = s
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                Value::Str(s) => KeyValue::new(k, StringValue::from(s)),
                Value::Int(i) => KeyValue::new(k, i),
            })
            .collect();
        attributes.extend(self.attributes.iter().cloned());
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(s.trace_id),
                SpanId::from_bytes(s.span_id),
                TraceFlags::SAMPLED,
                false,
                s.trace_state.parse().unwrap_or_default(),
            ),
            parent_span_id: s.parent_span_id.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: s.parent_span_id.is_some(),
            span_kind: SpanKind::Server,
            name: s.name.into(),
            start_time: s.start,
            end_time: s.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if s.error {
                Status::error("")
            } else {
                Status::Unset
            },
            instrumentation_scope: self.scope.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::SystemTime;

    #[test]
    fn endpoints_become_traces_urls() {
        for (given, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector/otlp", "http://collector/otlp/v1/traces"),
            ("http://collector/v1/traces", "http://collector/v1/traces"),
        ] {
            assert_eq!(traces_url(given).unwrap(), url, "{given}");
        }
        for bad in ["https://collector:4318", "collector:4318", "http://", ""] {
            assert!(
                matches!(traces_url(bad), Err(Error::Endpoint { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn spans_as_the_sdk_exports_them() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let finished = FinishedSpan {
            trace_id: [7; 16],
            span_id: [8; 8],
            parent_span_id: Some([9; 8]),
            trace_state: "congo=t61rcWkgMzE".into(),
            name: "demo:80/*".into(),
            start,
            end: start + Duration::from_millis(3),
            error: true,
            attributes: vec![
                ("url.path", Value::Str(Cow::Borrowed("/users"))),
                ("http.response.status_code", Value::Int(503)),
            ],
        };
        let convert = Convert::new(&[("istio.namespace", "istio-system".into())]);
        let data = convert.span(finished.clone());
        assert_eq!(data.span_context.trace_id().to_bytes(), [7; 16]);
        assert_eq!(data.span_context.span_id().to_bytes(), [8; 8]);
        assert!(data.span_context.is_sampled());
        assert_eq!(
            data.span_context.trace_state().header(),
            "congo=t61rcWkgMzE"
        );
        assert_eq!(data.parent_span_id.to_bytes(), [9; 8]);
        assert!(data.parent_span_is_remote);
        assert_eq!(data.span_kind, SpanKind::Server);
        assert_eq!(data.name, "demo:80/*");
        assert_eq!(
            (data.start_time, data.end_time),
            (finished.start, finished.end)
        );
        assert_eq!(data.status, Status::error(""));
        let attrs: Vec<String> = data
            .attributes
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        assert_eq!(
            attrs,
            [
                "url.path=/users",
                "http.response.status_code=503",
                "istio.namespace=istio-system"
            ]
        );
        let root = convert.span(FinishedSpan {
            parent_span_id: None,
            error: false,
            trace_state: String::new(),
            ..finished
        });
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert!(!root.parent_span_is_remote);
        assert_eq!(root.status, Status::Unset);
    }
}

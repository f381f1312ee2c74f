//! What a serving sluice reports: access logs (flags), spans (OTLP, `sluice-trace`), and
//! `/stats/prometheus`: Istio's metrics from the data plane, the gateway's own gauges, and how
//! reloads went.
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sluice_proxy::access_log::{AccessLog, Format};
use sluice_proxy::metrics::Workload;
use sluice_proxy::{Gateway, ServerOptions};
use sluice_source::ReloadStats;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Istio's default text format.
    Text,
    /// Istio's JSON encoding.
    Json,
}

/// Access-log and metrics flags of `sluice run`.
#[derive(clap::Args)]
pub struct Args {
    /// Log every request and TCP/TLS connection in Istio's default text format or its JSON
    /// encoding (`--access-log` alone: text), with Envoy's response flags.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "text")]
    access_log: Option<LogFormat>,
    /// Where access-log lines go (Istio's `accessLogFile`); written by a thread of its own.
    #[arg(long, default_value = "/dev/stdout")]
    access_log_file: String,
    /// The `source_workload` of Istio's metrics (the gateway's Deployment). Default: the `app`
    /// label of --gateway-labels, else `sluice`.
    #[arg(long, env = "SLUICE_WORKLOAD_NAME")]
    workload_name: Option<String>,
    #[command(flatten)]
    trace: TraceArgs,
}

/// Span export flags of `sluice run` and `sluice demo`.
#[derive(clap::Args)]
pub struct TraceArgs {
    /// Send a span per request to this OpenTelemetry collector (OTLP/HTTP with protobuf;
    /// `/v1/traces` is appended), e.g. http://127.0.0.1:4318. Off unless given: trace headers
    /// then pass through unchanged.
    #[arg(long)]
    otlp_endpoint: Option<String>,
    /// The spans' `service.name`.
    #[arg(long, default_value = "sluice", requires = "otlp_endpoint")]
    otlp_service_name: String,
    /// Share of the requests without a sampling decision that are traced (0.0 to 1.0); the
    /// decision of a client's `traceparent` or B3 headers always stands.
    #[arg(long, default_value_t = 1.0, requires = "otlp_endpoint")]
    otlp_sampling: f64,
}

impl TraceArgs {
    /// With `--otlp-endpoint`: starts the exporter and gives the gateway its tracer (with
    /// Istio's tags for `opts.workload`). The exporter is to be shut down after the drain.
    pub fn start(
        &self,
        opts: &mut ServerOptions,
    ) -> Result<Option<sluice_trace::Exporter>, String> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(None);
        };
        let (tracer, exporter) = sluice_trace::start(sluice_trace::Options {
            service_name: self.otlp_service_name.clone(),
            sampling: self.otlp_sampling,
            attributes: sluice_proxy::trace::istio_attributes(&opts.workload),
            ..sluice_trace::Options::new(endpoint.clone())
        })
        .map_err(|e| e.to_string())?;
        tracing::info!(%endpoint, sampling = self.otlp_sampling, "sending spans (OTLP/HTTP)");
        opts.tracer = Some(tracer);
        Ok(Some(exporter))
    }
}

impl Args {
    /// The access log, the metrics' workload and the tracer in `opts`; the span exporter, when
    /// there is one.
    pub fn apply(
        &self,
        opts: &mut ServerOptions,
        labels: &BTreeMap<String, String>,
        namespace: &str,
    ) -> Result<Option<sluice_trace::Exporter>, String> {
        if let Some(format) = self.access_log {
            let format = match format {
                LogFormat::Text => Format::Text,
                LogFormat::Json => Format::Json,
            };
            let log = AccessLog::open(format, &self.access_log_file)
                .map_err(|e| format!("cannot open {}: {e}", self.access_log_file))?;
            opts.access_log = Some(log);
        }
        opts.workload = Workload::from_labels(self.workload_name.as_deref(), namespace, labels);
        self.trace.start(opts)
    }
}

/// The registry `/stats/prometheus` encodes.
pub fn registry(gateway: &Gateway, reloads: Arc<ReloadStats>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(gateway.metrics()));
    registry.register_collector(Box::new(gateway.runtime_metrics()));
    registry.register_collector(Box::new(Reloads(reloads)));
    registry
}

/// The Prometheus text exposition (0.0.4) of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

/// The content type of `render`'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug)]
struct Reloads(Arc<ReloadStats>);

impl Collector for Reloads {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.0;
        let mut reloads = encoder.encode_descriptor(
            "sluice_config_reloads",
            "Configurations compiled and served (result=ok) or refused (result=failed).",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [("ok", stats.generation()), ("failed", stats.refused())] {
            reloads
                .encode_family(&[("result", result)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        encoder
            .encode_descriptor(
                "sluice_config_generation",
                "The serving configuration's number (1 for the first).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&(stats.generation() as i64))?;
        if let Some(at) = stats.served_at() {
            let age = at.elapsed().unwrap_or_default().as_secs_f64();
            encoder
                .encode_descriptor(
                    "sluice_config_age_seconds",
                    "Time since the serving configuration was applied.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&age)?;
        }
        Ok(())
    }
}

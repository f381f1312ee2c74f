//! What a serving sluice reports: access logs (flags), and `/stats/prometheus`: Istio's
//! metrics from the data plane, the gateway's own gauges, and how reloads went.
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
}

impl Args {
    /// The access log and the metrics' workload in `opts`.
    pub fn apply(
        &self,
        opts: &mut ServerOptions,
        labels: &BTreeMap<String, String>,
        namespace: &str,
    ) -> Result<(), String> {
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
        Ok(())
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

//! Logs of the serving commands: stderr, as text or JSON lines, through a filter that the admin
//! port's `/logging` can change while the gateway runs.
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// kube's client logs every failed request as an error; the watchers already say what failed,
/// once per retry, with the resource.
const QUIET: &str = "kube_client::client::builder=off";

/// The running filter, and a way to replace it.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// What was asked for, as given (the filter's own Display reorders directives).
    current: Arc<Mutex<String>>,
}

fn filter(spec: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(format!("{QUIET},{spec}"))
        .map_err(|e| format!("log level \"{spec}\": {e}"))
}

/// Installs the subscriber; `RUST_LOG`, when set, wins over `level`.
pub fn init(format: LogFormat, level: &str) -> Result<LogControl, String> {
    let spec = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => level.to_string(),
    };
    let (layer, handle) = reload::Layer::new(filter(&spec)?);
    let logs = tracing_subscriber::registry().with(layer);
    let stderr = std::io::stderr;
    match format {
        LogFormat::Text => logs
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
        LogFormat::Json => logs
            .with(tracing_subscriber::fmt::layer().json().with_writer(stderr))
            .init(),
    }
    Ok(LogControl {
        handle,
        current: Arc::new(Mutex::new(spec)),
    })
}

impl LogControl {
    /// The filter in force, as it was given (`info`, `sluice_proxy=debug,info`).
    pub fn level(&self) -> String {
        self.current.lock().expect("log level").clone()
    }

    /// Replaces the filter for every log line from now on; a malformed one changes nothing.
    pub fn set_level(&self, spec: &str) -> Result<(), String> {
        let new = filter(spec)?;
        self.handle.reload(new).map_err(|e| e.to_string())?;
        *self.current.lock().expect("log level") = spec.to_string();
        tracing::info!(level = spec, "log level changed");
        Ok(())
    }
}

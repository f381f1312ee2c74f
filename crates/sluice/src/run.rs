//! `sluice run` and `sluice demo`: a source's configuration → compile → serve, and again on
//! every change (the loop lives in `sluice-source`). A configuration with errors is refused
//! whole; the last good snapshot keeps serving.
use crate::render;
use sluice_compile::snapshot::ListenerProtocol;
use sluice_compile::{AnalyzeOptions, GatewayIdentity, Snapshot};
use sluice_proxy::{Gateway, ServerOptions};
use sluice_source::{Built, Pipeline, Reloader, Source};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

pub use sluice_source::eprint_block;

/// Changes closer together than this are one reload.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Told about every snapshot that serves.
pub type OnServed = Box<dyn FnMut(&Built) + Send>;

pub struct Config {
    pub source: Arc<dyn Source>,
    pub analyze: AnalyzeOptions,
    pub identity: GatewayIdentity,
    /// Files and embedded texts must compile before the gateway starts (a typo fails the
    /// command); a cluster's configuration arrives later and may be broken for a while, so
    /// Kubernetes mode starts empty and not ready instead.
    pub must_compile_first: bool,
    /// The readiness, metrics and admin ports, and what feeds them.
    pub admin: crate::admin::Options,
    /// Told about every snapshot that serves (the status writer).
    pub on_served: Option<OnServed>,
    pub debounce: Option<Duration>,
    /// The span exporter: what it still holds is sent after the drain.
    pub spans: Option<sluice_trace::Exporter>,
}

/// How long the spans of the last requests may take to leave after the drain.
const SPANS_FLUSH: Duration = Duration::from_secs(5);

/// Serves until SIGTERM or SIGINT, reloading on every change of the source and on SIGHUP.
pub async fn serve(config: Config, opts: ServerOptions) -> Result<(), String> {
    let Config {
        source,
        analyze,
        identity,
        must_compile_first,
        admin,
        mut on_served,
        debounce,
        spans,
    } = config;
    let mut reloader = Reloader::new(
        source.clone(),
        Pipeline::new(analyze, identity),
        debounce.unwrap_or(DEBOUNCE),
    )
    .with_render(render::text);
    let gateway = Arc::new(Gateway::new(opts));
    // Watch before the first read: a change made while it is read, or before the gateway
    // listens, is then a reload, not lost.
    let (changed_tx, changed) = mpsc::channel::<&'static str>(1);
    source
        .watch(changed_tx.clone())
        .map_err(|e| e.to_string())?;
    let first = if must_compile_first {
        let built = reloader.build().await.map_err(|e| reloader.explain(&e))?;
        describe(&built.snapshot);
        gateway
            .apply(built.snapshot.clone())
            .map_err(|e| e.to_string())?;
        Some(built)
    } else {
        None
    };
    // Every port listens before the instance can say it is ready.
    let readiness = reloader.readiness();
    crate::admin::serve(admin, readiness.clone(), gateway.clone(), reloader.stats()).await?;
    if let Some(built) = first {
        if let Some(f) = on_served.as_mut() {
            f(&built);
        }
        reloader.served(&built);
    }
    // The certificate directories the first snapshot names.
    source.refresh(&gateway.snapshot());
    let serving = gateway.clone();
    let mut first = !must_compile_first;
    let reloads = tokio::spawn(reloader.run(changed, move |built| {
        serving
            .apply(built.snapshot.clone())
            .map_err(|e| e.to_string())?;
        if std::mem::take(&mut first) {
            describe(&built.snapshot);
        }
        if let Some(f) = on_served.as_mut() {
            f(built);
        }
        Ok(())
    }));
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                // Full: a reload is pending and will read everything anyway.
                let _ = changed_tx.try_send("SIGHUP");
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    // Unready first, so load balancers stop sending while open requests finish.
    readiness.set_draining();
    tracing::info!("draining");
    reloads.abort();
    gateway.shutdown().await;
    if let Some(spans) = spans {
        spans.shutdown(SPANS_FLUSH).await;
    }
    Ok(())
}

fn describe(snapshot: &Snapshot) {
    for (port, l) in &snapshot.listeners {
        let hosts: usize = snapshot
            .route_tables
            .iter()
            .filter(|(name, _)| match &l.protocol {
                ListenerProtocol::Http { route_table } => *name == route_table,
                ListenerProtocol::Tls { servers } => servers
                    .iter()
                    .any(|s| s.route_table() == Some(name.as_str())),
                ListenerProtocol::Tcp { .. } => false,
            })
            .map(|(_, t)| t.virtual_hosts.len())
            .sum();
        tracing::info!(
            listener = %l.name,
            gateway_port = l.service_port,
            bind_port = port,
            virtual_hosts = hosts,
            "compiled"
        );
    }
}

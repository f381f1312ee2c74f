//! From a source's changes to snapshots: debounce a burst into one compile, compile on a
//! blocking thread (a large configuration must not stall the proxy's workers), hand a good
//! result on, and keep the last good one serving when the new one is refused.
use crate::{Source, SourceError};
use sluice_compile::{AnalyzeOptions, GatewayIdentity, Snapshot};
use sluice_config::{Diagnostic, Severity, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// Load → admit → compile, with the instance's identity.
pub struct Pipeline {
    pub analyze: AnalyzeOptions,
    pub identity: GatewayIdentity,
    /// The warnings the last compile logged: a reload logs only those that are new, so every
    /// EndpointSlice change in a cluster does not repeat every warning.
    logged: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A configuration that compiled: the snapshot to serve and the store it came from (the
/// status writer reads the store).
#[derive(Clone)]
pub struct Built {
    pub snapshot: Arc<Snapshot>,
    pub store: Arc<Store>,
}

/// Texts by source name, to render diagnostics with their lines.
pub type Sources = HashMap<Arc<str>, Arc<str>>;

/// Renders refused diagnostics (the CLI passes its compiler-style renderer).
pub type Render = fn(&[Diagnostic], &Sources) -> String;

impl Pipeline {
    pub fn new(analyze: AnalyzeOptions, identity: GatewayIdentity) -> Pipeline {
        Pipeline {
            analyze,
            identity,
            logged: Default::default(),
        }
    }

    /// One compile of what `source` holds now. Warnings not logged by the previous compile are
    /// logged; errors refuse it.
    pub fn build(&self, source: &dyn Source) -> Result<Built, SourceError> {
        let loaded = source.load()?;
        let (store, diags) = sluice_compile::admit(&loaded, &self.analyze);
        let Some(store) = store else {
            return Err(SourceError::Refused {
                errors: diags.into_iter().filter(|d| d.is_error()).collect(),
                sources: loaded.sources,
            });
        };
        let (snapshot, notes) = sluice_compile::compile(&store, &self.identity);
        let warnings = diags
            .iter()
            .chain(&notes)
            .filter(|d| d.severity != Severity::Info);
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        for d in fresh(&mut logged, warnings) {
            let at = d.origin.as_ref().map(|o| format!("{}:{}", o.file, o.line));
            tracing::warn!(code = d.code, at, "{}", d.message);
        }
        Ok(Built {
            snapshot: Arc::new(snapshot),
            store: Arc::new(store),
        })
    }
}

/// The diagnostics of this compile that the previous one did not have (`previous` becomes
/// this compile's): one that went away and comes back is new again.
fn fresh<'d>(
    previous: &mut std::collections::HashSet<String>,
    now: impl Iterator<Item = &'d Diagnostic>,
) -> Vec<&'d Diagnostic> {
    let mut current = std::collections::HashSet::new();
    let mut out = Vec::new();
    for d in now {
        let at = d.origin.as_ref().map(|o| format!("{}:{}", o.file, o.line));
        let key = format!("{} {} {}", d.code, at.unwrap_or_default(), d.message);
        if !previous.contains(&key) && current.insert(key.clone()) {
            out.push(d);
        }
        current.insert(key);
    }
    *previous = current;
    out
}

/// Whether the instance should get traffic: every watcher has synced, a configuration has
/// compiled and serves, and it is not draining.
#[derive(Clone)]
pub struct Readiness {
    source: Arc<dyn Source>,
    served: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl Readiness {
    pub fn new(source: Arc<dyn Source>) -> Readiness {
        Readiness {
            source,
            served: Default::default(),
            draining: Default::default(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.served.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && self.source.synced()
    }

    /// How long the configuration source may have been missing changes.
    pub fn staleness(&self) -> Duration {
        self.source.staleness()
    }

    pub fn set_served(&self) {
        self.served.store(true, Ordering::Release);
    }

    /// From now on not ready (SIGTERM: the load balancer stops sending while we drain).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// How configurations went: served (the generation) and refused, and when the serving one
/// was applied. Read by `/stats/prometheus`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    served: AtomicU64,
    refused: AtomicU64,
    /// Unix time of the last serve, in milliseconds; 0 before the first.
    served_at_ms: AtomicU64,
}

impl ReloadStats {
    /// Configurations served so far; the serving one's generation.
    pub fn generation(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// When the serving configuration was applied.
    pub fn served_at(&self) -> Option<SystemTime> {
        match self.served_at_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    fn served(&self) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        self.served_at_ms.store(now, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    fn refused_one(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// The reload loop of one source.
pub struct Reloader {
    source: Arc<dyn Source>,
    pipeline: Arc<Pipeline>,
    /// Changes closer together than this are one compile (editors write a file in several
    /// steps, a ConfigMap update swaps a symlink, a rollout changes many EndpointSlices).
    debounce: Duration,
    readiness: Readiness,
    render: Render,
    serving: Option<Arc<Snapshot>>,
    stats: Arc<ReloadStats>,
}

impl Reloader {
    pub fn new(source: Arc<dyn Source>, pipeline: Pipeline, debounce: Duration) -> Reloader {
        Reloader {
            readiness: Readiness::new(source.clone()),
            source,
            pipeline: Arc::new(pipeline),
            debounce,
            render: plain,
            serving: None,
            stats: Arc::default(),
        }
    }

    pub fn with_render(self, render: Render) -> Reloader {
        Reloader { render, ..self }
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    pub fn stats(&self) -> Arc<ReloadStats> {
        self.stats.clone()
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// One compile now, on a blocking thread.
    pub async fn build(&self) -> Result<Built, SourceError> {
        let (source, pipeline) = (self.source.clone(), self.pipeline.clone());
        tokio::task::spawn_blocking(move || pipeline.build(&*source))
            .await
            .unwrap_or_else(|e| Err(SourceError::Panicked(e.to_string())))
    }

    /// The snapshot `apply` took; the loop refreshes the source's watches with it.
    pub fn served(&mut self, built: &Built) {
        self.serving = Some(built.snapshot.clone());
        self.stats.served();
        self.readiness.set_served();
        self.source.refresh(&built.snapshot);
    }

    /// Renders why a configuration was refused.
    pub fn explain(&self, e: &SourceError) -> String {
        match e {
            SourceError::Refused { errors, sources } => (self.render)(errors, sources),
            other => other.to_string(),
        }
    }

    /// Until `changes` closes: each burst of changes becomes one compile, and a good one goes to
    /// `apply` (which may still refuse it, e.g. a port that cannot be bound).
    pub async fn run<F>(mut self, mut changes: mpsc::Receiver<&'static str>, mut apply: F)
    where
        F: FnMut(&Built) -> Result<(), String>,
    {
        while let Some(mut why) = changes.recv().await {
            tokio::time::sleep(self.debounce).await;
            while let Ok(w) = changes.try_recv() {
                why = w;
            }
            if !self.source.synced() {
                tracing::debug!(reason = why, "waiting for the source's first full read");
                continue;
            }
            // Watch a replaced directory again before reading it: an edit made while the files
            // are read, or just after the new configuration serves, is then seen.
            if let Some(s) = &self.serving {
                self.source.refresh(s);
            }
            let started = Instant::now();
            match self.build().await {
                Ok(built) => match apply(&built) {
                    Ok(()) => {
                        tracing::info!(
                            reason = why,
                            compile_ms = started.elapsed().as_millis() as u64,
                            "configuration reloaded"
                        );
                        self.served(&built);
                    }
                    Err(e) => {
                        self.stats.refused_one();
                        tracing::error!(reason = why, error = %e, "reload refused; still serving the previous configuration")
                    }
                },
                Err(e) => {
                    self.stats.refused_one();
                    eprint_block(&self.explain(&e));
                    tracing::error!(
                        reason = why,
                        "configuration has errors; still serving the previous configuration"
                    );
                }
            }
            if let Some(s) = &self.serving {
                self.source.refresh(s);
            }
        }
    }
}

/// `file:line:column: message` lines, when no renderer was given.
fn plain(errors: &[Diagnostic], _: &Sources) -> String {
    errors
        .iter()
        .map(|d| match &d.origin {
            Some(o) => format!("{}:{}:{}: {}\n", o.file, o.line, o.column, d.message),
            None => format!("{}\n", d.message),
        })
        .collect()
}

/// Prints a block of text (rendered diagnostics, an error) on stderr, ending its last line so
/// the next log line starts on its own.
pub fn eprint_block(text: &str) {
    if text.ends_with('\n') {
        eprint!("{text}");
    } else {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::fresh;
    use sluice_config::{Diagnostic, Severity};

    #[test]
    fn a_reload_logs_only_warnings_that_are_new() {
        let w = |m: &str| Diagnostic::new(Severity::Warning, "SLU0015", m.to_string());
        let mut previous = Default::default();
        let first = [w("a"), w("b")];
        assert_eq!(fresh(&mut previous, first.iter()).len(), 2);
        let second = [w("a"), w("b"), w("c")];
        let new: Vec<_> = fresh(&mut previous, second.iter())
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(new, ["c"]);
        // "a" goes away and comes back: logged again.
        assert!(fresh(&mut previous, [w("b"), w("c")].iter()).is_empty());
        let back: Vec<_> = fresh(&mut previous, [w("a"), w("b")].iter())
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(back, ["a"]);
    }
}

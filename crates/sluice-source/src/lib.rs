//! Where configuration comes from, behind one seam: a [`Source`] gives the whole configuration
//! as the loader reads it and says when it changed; the [`reload`] loop turns bursts of changes
//! into one compile (on a blocking thread) and hands good snapshots on. Embedded texts (the
//! demo) and files live here; the Kubernetes source lives in `sluice-kube`.
#![forbid(unsafe_code)]

mod embedded;
mod files;
pub mod reload;

pub use embedded::Embedded;
pub use files::Files;
pub use reload::{eprint_block, Built, Pipeline, Readiness, ReloadStats, Reloader};

use sluice_compile::Snapshot;
use sluice_config::Loaded;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Load(#[from] sluice_config::LoadError),
    #[error("cannot watch the configuration: {0}")]
    Watch(#[from] notify::Error),
    /// A source that has not seen the whole configuration yet (a Kubernetes watcher still
    /// listing): compiling now would serve a partial view.
    #[error("the source has not finished its first read: {0}")]
    NotSynced(String),
    #[error("the compile stopped: {0}")]
    Panicked(String),
    /// Loading or an object's own rules found errors (what Istio's admission webhook would
    /// reject): the configuration is refused whole.
    #[error("the configuration has {} error(s)", errors.len())]
    Refused {
        errors: Vec<sluice_config::Diagnostic>,
        sources: reload::Sources,
    },
}

/// A place configuration comes from.
pub trait Source: Send + Sync + 'static {
    /// Starts noticing changes; each one sends on `changed` (a full channel means a reload is
    /// already pending, which will see this change too). Needs a Tokio runtime.
    fn watch(&self, changed: mpsc::Sender<&'static str>) -> Result<(), SourceError>;

    /// Everything the source holds now, as the loader reads it. Called on a blocking thread.
    fn load(&self) -> Result<Loaded, SourceError>;

    /// Whether the first full view is in. Files and embedded texts always are; a Kubernetes
    /// source is once every watcher has listed its objects.
    fn synced(&self) -> bool {
        true
    }

    /// Told around each reload with the snapshot serving then (the file source watches the
    /// directories of the certificate files it names, and directories that were replaced).
    fn refresh(&self, _serving: &Snapshot) {}

    /// How long the source may have been missing changes (a Kubernetes watch failing); zero
    /// when it is current.
    fn staleness(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

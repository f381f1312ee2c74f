//! `sluice run` and `sluice demo`: load → check → compile → serve, and again on every change.
//! A configuration with errors is refused whole; the last good snapshot keeps serving.
use crate::render;
use sluice_compile::snapshot::ListenerProtocol;
use sluice_compile::{AnalyzeOptions, GatewayIdentity, Snapshot};
use sluice_config::{Loaded, Loader};
use sluice_proxy::{Gateway, ServerOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Changes closer together than this are one reload (editors write files in several steps,
/// a ConfigMap update swaps a symlink and removes the old directory).
const DEBOUNCE: Duration = Duration::from_millis(250);

pub enum Source {
    Paths(Vec<PathBuf>),
    /// Named texts compiled into the binary (`sluice demo`).
    Embedded(Vec<(&'static str, &'static str)>),
}

pub struct Config {
    pub source: Source,
    pub analyze: AnalyzeOptions,
    pub identity: GatewayIdentity,
}

impl Config {
    fn load(&self) -> Result<Loaded, String> {
        match &self.source {
            Source::Paths(paths) => sluice_config::load_paths(paths).map_err(|e| e.to_string()),
            Source::Embedded(texts) => {
                let mut l = Loader::new();
                for (name, text) in texts {
                    l.add_text((*name).into(), text);
                }
                Ok(l.finish())
            }
        }
    }

    /// A snapshot, or the rendered reasons it was refused.
    pub fn build(&self) -> Result<Snapshot, String> {
        let loaded = self.load()?;
        let (store, diags) = sluice_compile::admit(&loaded, &self.analyze);
        let Some(store) = store else {
            let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
            return Err(render::text(&errors, &loaded.sources));
        };
        let (snapshot, notes) = sluice_compile::compile(&store, &self.identity);
        for d in diags.iter().chain(&notes) {
            if d.severity != sluice_config::Severity::Info {
                let at = d.origin.as_ref().map(|o| format!("{}:{}", o.file, o.line));
                tracing::warn!(code = d.code, at, "{}", d.message);
            }
        }
        Ok(snapshot)
    }
}

/// Serves until SIGTERM or SIGINT, reloading on file changes and SIGHUP.
pub async fn serve(config: Config, opts: ServerOptions) -> Result<(), String> {
    let snapshot = config.build()?;
    let gateway = Gateway::new(opts);
    describe(&snapshot);
    gateway
        .apply(Arc::new(snapshot))
        .map_err(|e| e.to_string())?;

    let (changed_tx, mut changed) = mpsc::channel::<()>(1);
    let mut watch = match &config.source {
        Source::Paths(paths) => Some(Watch::new(paths, changed_tx).map_err(|e| e.to_string())?),
        Source::Embedded(_) => None,
    };
    let mut refresh = |snapshot: &Snapshot| {
        if let Some(w) = watch.as_mut() {
            w.refresh(snapshot);
        }
    };
    refresh(&gateway.snapshot());
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            Some(()) = changed.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while changed.try_recv().is_ok() {}
                // Watch a replaced directory again before reading it: an edit made while the
                // files are read, or just after the new configuration serves, is then seen.
                refresh(&gateway.snapshot());
                reload(&config, &gateway, "files changed");
                refresh(&gateway.snapshot());
            }
            _ = hangup.recv() => {
                refresh(&gateway.snapshot());
                reload(&config, &gateway, "SIGHUP");
                refresh(&gateway.snapshot());
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    tracing::info!("draining");
    gateway.shutdown().await;
    Ok(())
}

fn reload(config: &Config, gateway: &Gateway, why: &str) {
    match config.build() {
        Ok(snapshot) => match gateway.apply(Arc::new(snapshot)) {
            Ok(()) => tracing::info!(reason = why, "configuration reloaded"),
            Err(e) => {
                tracing::error!(reason = why, error = %e, "reload refused; still serving the previous configuration")
            }
        },
        Err(rendered) => {
            eprint_block(&rendered);
            tracing::error!(
                reason = why,
                "configuration has errors; still serving the previous configuration"
            );
        }
    }
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

/// Prints a block of text (rendered diagnostics, an error) on stderr, ending its last line so
/// the next log line starts on its own.
pub fn eprint_block(text: &str) {
    if text.ends_with('\n') {
        eprint!("{text}");
    } else {
        eprintln!("{text}");
    }
}

/// Directories of the certificate and key files a snapshot names (TLS servers, upstream TLS).
fn certificate_dirs(snapshot: &Snapshot) -> Vec<PathBuf> {
    use sluice_compile::tls::Pem;
    let mut pems: Vec<&Pem> = Vec::new();
    for l in snapshot.listeners.values() {
        let ListenerProtocol::Tls { servers } = &l.protocol else {
            continue;
        };
        for settings in servers.iter().filter_map(|s| s.settings()) {
            pems.extend([&settings.cert_chain, &settings.private_key]);
            pems.extend(settings.ca.as_ref());
        }
    }
    for c in snapshot.clusters.values() {
        if let Some(t) = &c.tls {
            pems.extend(t.ca.as_ref());
            if let Some((cert, key)) = &t.client_cert {
                pems.extend([cert, key]);
            }
        }
    }
    pems.into_iter()
        .filter_map(|p| match p {
            Pem::File(path) => path.parent().map(|d| d.to_path_buf()),
            Pem::Inline(_) => None,
        })
        .filter(|d| d.is_dir())
        .collect()
}

/// The file watcher and what it watches: each configuration path (a directory recursively, a
/// file through its directory, so ConfigMap symlink swaps and editors' rename-on-save are seen),
/// the parent of each configuration directory (so a directory deleted and created again is
/// seen), and the directories of certificate files the snapshot names.
struct Watch {
    watcher: notify::RecommendedWatcher,
    /// Changes under these paths count; the parents' other entries are not ours.
    roots: Arc<std::sync::Mutex<Vec<PathBuf>>>,
    /// Configuration directories.
    dirs: Arc<Vec<PathBuf>>,
    /// Configuration directories that were removed, created or renamed since last watched: their
    /// watch is gone (a new directory may even get the old inode number).
    replaced: Arc<std::sync::Mutex<std::collections::BTreeSet<PathBuf>>>,
    certificate_dirs: std::collections::BTreeSet<PathBuf>,
}

impl Watch {
    fn new(paths: &[PathBuf], tx: mpsc::Sender<()>) -> notify::Result<Watch> {
        use notify::{RecursiveMode, Watcher};
        let roots: Arc<std::sync::Mutex<Vec<PathBuf>>> = Arc::default();
        let replaced: Arc<std::sync::Mutex<std::collections::BTreeSet<PathBuf>>> = Arc::default();
        // Absolute, so the paths events carry compare with the roots.
        let paths = paths
            .iter()
            .map(std::path::absolute)
            .collect::<Result<Vec<_>, _>>()?;
        let dirs: Arc<Vec<PathBuf>> =
            Arc::new(paths.iter().filter(|p| p.is_dir()).cloned().collect());
        let (seen, gone, ours_dirs) = (roots.clone(), replaced.clone(), dirs.clone());
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            // Reading the directory (an access) or editing inside it leaves its watch as it is.
            let replacing = matches!(
                event.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Remove(_)
                    | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
            );
            for p in event.paths.iter().filter(|_| replacing) {
                if ours_dirs.contains(p) {
                    gone.lock().expect("replaced dirs").insert(p.clone());
                }
            }
            let roots = seen.lock().expect("watch roots");
            let ours = event
                .paths
                .iter()
                .any(|p| roots.iter().any(|r| p.starts_with(r) || r.starts_with(p)));
            if ours && !event.kind.is_access() {
                // Full channel: a reload is already pending, which will see this change too.
                let _ = tx.try_send(());
            }
        })?;
        let mut w = Watch {
            watcher,
            roots,
            dirs,
            replaced,
            certificate_dirs: Default::default(),
        };
        for path in paths {
            let parent = path
                .parent()
                .map_or_else(|| PathBuf::from("/"), PathBuf::from);
            if w.dirs.contains(&path) {
                w.watcher.watch(&path, RecursiveMode::Recursive)?;
                w.watcher.watch(&parent, RecursiveMode::NonRecursive)?;
                w.add_root(path);
            } else {
                w.watcher.watch(&parent, RecursiveMode::NonRecursive)?;
                w.add_root(parent);
            }
        }
        Ok(w)
    }

    fn add_root(&mut self, path: PathBuf) {
        self.roots.lock().expect("watch roots").push(path);
    }

    /// After a reload: watches a configuration directory again if it was replaced (its old
    /// watch went with it), and the certificate directories the new snapshot names.
    fn refresh(&mut self, snapshot: &Snapshot) {
        use notify::{RecursiveMode, Watcher};
        let replaced = std::mem::take(&mut *self.replaced.lock().expect("replaced dirs"));
        for dir in replaced {
            if !dir.is_dir() {
                // Not back yet: its parent's watch will say when it is.
                self.replaced.lock().expect("replaced dirs").insert(dir);
                continue;
            }
            let _ = self.watcher.unwatch(&dir);
            match self.watcher.watch(&dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "configuration directory replaced; watching the new one")
                }
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot watch"),
            }
        }
        // Certificates named by path live outside the configuration; their directories are
        // watched too, so a rotated file is picked up like a changed Secret.
        for dir in certificate_dirs(snapshot) {
            if self.certificate_dirs.insert(dir.clone()) {
                match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                    Ok(()) => self.add_root(dir),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch certificate directory")
                    }
                }
            }
        }
    }
}

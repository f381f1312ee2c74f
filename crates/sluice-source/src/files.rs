//! Configuration files and directories, watched with notify.
use crate::{Source, SourceError};
use sluice_compile::snapshot::ListenerProtocol;
use sluice_compile::Snapshot;
use sluice_config::Loaded;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub struct Files {
    paths: Vec<PathBuf>,
    watch: Mutex<Option<Watch>>,
}

impl Files {
    pub fn new(paths: Vec<PathBuf>) -> Files {
        Files {
            paths,
            watch: Mutex::new(None),
        }
    }
}

impl Source for Files {
    fn watch(&self, changed: mpsc::Sender<&'static str>) -> Result<(), SourceError> {
        let w = Watch::new(&self.paths, changed)?;
        *self.watch.lock().expect("watch") = Some(w);
        Ok(())
    }

    fn load(&self) -> Result<Loaded, SourceError> {
        Ok(sluice_config::load_paths(&self.paths)?)
    }

    fn refresh(&self, serving: &Snapshot) {
        if let Some(w) = self.watch.lock().expect("watch").as_mut() {
            w.refresh(serving);
        }
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
    roots: Arc<Mutex<Vec<PathBuf>>>,
    /// Configuration directories.
    dirs: Arc<Vec<PathBuf>>,
    /// Configuration directories that were removed, created or renamed since last watched: their
    /// watch is gone (a new directory may even get the old inode number).
    replaced: Arc<Mutex<std::collections::BTreeSet<PathBuf>>>,
    certificate_dirs: std::collections::BTreeSet<PathBuf>,
    /// Told when a certificate directory starts being watched: a file rotated since the
    /// snapshot read it (before the watch) is then read again.
    changed: mpsc::Sender<&'static str>,
}

impl Watch {
    fn new(paths: &[PathBuf], tx: mpsc::Sender<&'static str>) -> notify::Result<Watch> {
        use notify::{RecursiveMode, Watcher};
        let roots: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let replaced: Arc<Mutex<std::collections::BTreeSet<PathBuf>>> = Arc::default();
        // Absolute, so the paths events carry compare with the roots.
        let paths = paths
            .iter()
            .map(std::path::absolute)
            .collect::<Result<Vec<_>, _>>()?;
        let dirs: Arc<Vec<PathBuf>> =
            Arc::new(paths.iter().filter(|p| p.is_dir()).cloned().collect());
        let (seen, gone, ours_dirs) = (roots.clone(), replaced.clone(), dirs.clone());
        let changed = tx.clone();
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
                let _ = tx.try_send("files changed");
            }
        })?;
        let mut w = Watch {
            watcher,
            roots,
            dirs,
            replaced,
            certificate_dirs: Default::default(),
            changed,
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
                    Ok(()) => {
                        self.add_root(dir);
                        // Full channel: a reload is pending already and reads the files.
                        let _ = self.changed.try_send("certificate directory watched");
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch certificate directory")
                    }
                }
            }
        }
    }
}

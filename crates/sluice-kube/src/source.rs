//! The cluster as a [`Source`]: one kube-rs watcher per resource (and per namespace with
//! `--watch-namespaces`), each object kept as the JSON text the API server sent and read by the
//! same loader as files, under the name `kubernetes:<resource>.<group>/<namespace>/<name>` (so a
//! diagnostic points at a line of that object as `kubectl get -o json` prints it).
use crate::resources::{Watched, RESOURCES};
use crate::Error;
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::Value;
use sluice_config::{Loaded, Loader};
use sluice_source::{Source, SourceError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Namespaced objects only from these namespaces (empty: every namespace).
    pub watch_namespaces: Vec<String>,
    /// Namespaces whose Secrets are read (credentialName Secrets live in the gateway's own
    /// namespace); never cluster-wide.
    pub secret_namespaces: Vec<String>,
    /// Retry delays after a failed list or watch: doubling from the first to the second.
    pub backoff: (Duration, Duration),
}

impl Options {
    pub const DEFAULT_BACKOFF: (Duration, Duration) =
        (Duration::from_millis(800), Duration::from_secs(30));
}

/// One watcher: a resource, in one namespace or all.
struct Watcher {
    resource: &'static Watched,
    namespace: Option<String>,
    synced: AtomicBool,
    health: Mutex<Health>,
    /// Failures in a row (the backoff grows with them).
    failures: Arc<AtomicU32>,
}

#[derive(Default)]
struct Health {
    /// The first failure since the watcher last received data.
    failing_since: Option<Instant>,
    last_failure: Option<Instant>,
}

/// Doubling delays by the failures in a row. kube's stream backoff resets on every `Ok`, and
/// the watcher yields one (`Init`) before each list attempt, so the count is kept here and
/// only real data resets it.
struct Backoff {
    failures: Arc<AtomicU32>,
    first: Duration,
    max: Duration,
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let n = self.failures.load(Ordering::Relaxed).min(16);
        Some(
            self.first
                .saturating_mul(1 << n.saturating_sub(1))
                .min(self.max),
        )
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {}
}

/// An object as received, parsed on first use (on the compile's blocking thread, not on the
/// watchers' async tasks).
struct Entry {
    name: Arc<str>,
    text: Arc<str>,
    parsed: OnceLock<Arc<Loaded>>,
}

impl Entry {
    fn loaded(&self, keep_text: bool) -> &Arc<Loaded> {
        self.parsed.get_or_init(|| {
            let mut l = Loader::new();
            l.add_text(self.name.clone(), &self.text);
            let mut loaded = l.finish();
            if !keep_text {
                // A Secret's text never goes where a diagnostic could print it.
                loaded.sources.clear();
            }
            Arc::new(loaded)
        })
    }
}

type Key = (usize, String, String);

pub struct Kubernetes {
    backoff: (Duration, Duration),
    client: Client,
    watchers: Arc<Vec<Watcher>>,
    objects: Arc<Mutex<HashMap<Key, Arc<Entry>>>>,
}

impl Kubernetes {
    pub fn new(client: Client, opts: &Options) -> Kubernetes {
        let mut watchers = Vec::new();
        let backoff = if opts.backoff == (Duration::ZERO, Duration::ZERO) {
            Options::DEFAULT_BACKOFF
        } else {
            opts.backoff
        };
        for resource in RESOURCES {
            let namespaces: Vec<Option<String>> = if !resource.namespaced {
                vec![None]
            } else if resource.kind == "Secret" {
                opts.secret_namespaces.iter().cloned().map(Some).collect()
            } else if opts.watch_namespaces.is_empty() {
                vec![None]
            } else {
                opts.watch_namespaces.iter().cloned().map(Some).collect()
            };
            for namespace in namespaces {
                watchers.push(Watcher {
                    resource,
                    namespace,
                    synced: AtomicBool::new(false),
                    health: Mutex::default(),
                    failures: Arc::default(),
                });
            }
        }
        Kubernetes {
            backoff,
            client,
            watchers: Arc::new(watchers),
            objects: Default::default(),
        }
    }

    /// How long the oldest failing watcher has been failing: the age of the view, at most
    /// (zero while every watch works).
    pub fn staleness(&self) -> Duration {
        self.watchers
            .iter()
            .filter_map(|w| w.failing_since(self.backoff.1))
            .map(|t| t.elapsed())
            .max()
            .unwrap_or_default()
    }

    /// Resources whose watch is failing now, as `resource.group[/namespace]`.
    pub fn failing(&self) -> Vec<String> {
        self.watchers
            .iter()
            .filter(|w| w.failing_since(self.backoff.1).is_some())
            .map(|w| w.describe())
            .collect()
    }

    pub fn object_count(&self) -> usize {
        self.objects.lock().expect("objects").len()
    }
}

impl Watcher {
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}", self.resource.resource()),
            None => self.resource.resource(),
        }
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut h = self.health.lock().expect("health");
        h.failing_since.get_or_insert_with(Instant::now);
        h.last_failure = Some(Instant::now());
    }

    /// Data arrived: the view of this resource is current.
    fn worked(&self) -> bool {
        self.failures.store(0, Ordering::Relaxed);
        let mut h = self.health.lock().expect("health");
        h.last_failure = None;
        h.failing_since.take().is_some()
    }

    /// Since when the view may be stale. A watch that starts again after failures sends
    /// nothing until something changes (bookmarks do not reach us), so a watcher that has not
    /// failed for longer than its longest retry delay (plus a margin) counts as current.
    fn failing_since(&self, max_backoff: Duration) -> Option<Instant> {
        let h = self.health.lock().expect("health");
        let recent = h
            .last_failure
            .is_some_and(|t| t.elapsed() < max_backoff * 2 + Duration::from_secs(1));
        h.failing_since.filter(|_| recent)
    }
}

impl Source for Kubernetes {
    fn watch(&self, changed: mpsc::Sender<&'static str>) -> Result<(), SourceError> {
        for index in 0..self.watchers.len() {
            let task = Task {
                client: self.client.clone(),
                watchers: self.watchers.clone(),
                index,
                objects: self.objects.clone(),
                changed: changed.clone(),
                backoff: self.backoff,
            };
            tokio::spawn(task.run());
        }
        Ok(())
    }

    fn load(&self) -> Result<Loaded, SourceError> {
        if !self.synced() {
            return Err(SourceError::NotSynced(
                "a Kubernetes watcher has not listed its objects yet".into(),
            ));
        }
        let mut entries: Vec<(Key, Arc<Entry>)> = self
            .objects
            .lock()
            .expect("objects")
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        entries.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let mut out = Loaded::default();
        for (key, entry) in entries {
            let keep_text = self.watchers[key.0].resource.kind != "Secret";
            let one = entry.loaded(keep_text);
            for o in &one.objects {
                let mut o = o.clone();
                o.seq = out.objects.len();
                out.objects.push(o);
            }
            out.diagnostics.extend(one.diagnostics.iter().cloned());
            out.sources
                .extend(one.sources.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Ok(out)
    }

    fn synced(&self) -> bool {
        self.watchers
            .iter()
            .all(|w| w.synced.load(Ordering::Acquire))
    }

    fn staleness(&self) -> Duration {
        Kubernetes::staleness(self)
    }
}

/// One watcher's loop: events into the shared objects, a change notice after each.
struct Task {
    client: Client,
    watchers: Arc<Vec<Watcher>>,
    index: usize,
    objects: Arc<Mutex<HashMap<Key, Arc<Entry>>>>,
    changed: mpsc::Sender<&'static str>,
    backoff: (Duration, Duration),
}

/// A watcher event with its object already turned into JSON.
enum Ev {
    Init,
    InitApply(Value),
    InitDone,
    Apply(Value),
    Delete(Value),
}

fn ev<K: serde::Serialize>(e: Event<K>) -> Ev {
    let json = |k: K| serde_json::to_value(k).unwrap_or(Value::Null);
    match e {
        Event::Init => Ev::Init,
        Event::InitApply(k) => Ev::InitApply(json(k)),
        Event::InitDone => Ev::InitDone,
        Event::Apply(k) => Ev::Apply(json(k)),
        Event::Delete(k) => Ev::Delete(json(k)),
    }
}

impl Task {
    async fn run(self) {
        let w = &self.watchers[self.index];
        let ar = w.resource.api_resource();
        let config = watcher::Config::default();
        let backoff = || Backoff {
            failures: w.failures.clone(),
            first: self.backoff.0,
            max: self.backoff.1,
        };
        // Pods: metadata only (labels), never specs; everything else as the API returns it.
        let mut events = if w.resource.metadata_only {
            let api: Api<PartialObjectMeta<k8s_openapi::api::core::v1::Pod>> = match &w.namespace {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            watcher::watcher(api, config)
                .backoff(backoff())
                .map(|r| r.map(ev))
                .boxed()
        } else {
            let api: Api<DynamicObject> = match &w.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                None => Api::all_with(self.client.clone(), &ar),
            };
            watcher::watcher(api, config)
                .backoff(backoff())
                .map(|r| r.map(ev))
                .boxed()
        };
        let mut listing: Option<HashMap<Key, Arc<Entry>>> = None;
        let mut absent_logged = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => {
                    // `Init` comes before the list is even tried: not proof of anything.
                    if !matches!(e, Ev::Init) {
                        if w.worked() {
                            tracing::info!(resource = %w.describe(), "watch works again");
                        }
                        absent_logged = false;
                    }
                    e
                }
                Err(e) => {
                    self.failed(&e, &mut absent_logged);
                    continue;
                }
            };
            match event {
                Ev::Init => listing = Some(HashMap::new()),
                Ev::InitApply(v) => {
                    if let Some((key, entry)) = self.entry(v) {
                        listing.get_or_insert_with(HashMap::new).insert(key, entry);
                    }
                }
                Ev::InitDone => {
                    // The list replaces what this watcher held: objects deleted while it was
                    // not watching go now.
                    let fresh = listing.take().unwrap_or_default();
                    {
                        let mut objects = self.objects.lock().expect("objects");
                        objects.retain(|k, _| k.0 != self.index);
                        objects.extend(fresh);
                    }
                    if !w.synced.swap(true, Ordering::AcqRel) {
                        tracing::info!(resource = %w.describe(), "listed");
                    }
                    self.notify();
                }
                Ev::Apply(v) => {
                    if let Some((key, entry)) = self.entry(v) {
                        let mut objects = self.objects.lock().expect("objects");
                        // Same resourceVersion: nothing new (a relist's echo).
                        let same = objects.get(&key).is_some_and(|old| old.text == entry.text);
                        if !same {
                            objects.insert(key, entry);
                            drop(objects);
                            self.notify();
                        }
                    }
                }
                Ev::Delete(v) => {
                    if let Some((key, _)) = self.entry(v) {
                        let removed = self.objects.lock().expect("objects").remove(&key);
                        if removed.is_some() {
                            self.notify();
                        }
                    }
                }
            }
        }
    }

    fn failed(&self, e: &watcher::Error, absent_logged: &mut bool) {
        let w = &self.watchers[self.index];
        w.failed();
        let not_found = matches!(
            e,
            watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404
        );
        if not_found {
            // The resource is not served (its CRD is not installed, e.g. no Istio): there is
            // nothing to wait for. The watcher keeps asking, so installing it later works.
            if !*absent_logged {
                tracing::info!(resource = %w.describe(), "not served by the API server (CRD not installed?); treated as empty");
                *absent_logged = true;
            }
            {
                // Not stale: there is nothing to miss. Keep the growing delay, though.
                let mut h = w.health.lock().expect("health");
                *h = Health::default();
            }
            if !w.synced.swap(true, Ordering::AcqRel) {
                self.notify();
            }
            return;
        }
        tracing::warn!(resource = %w.describe(), error = %e, "watch failed; retrying with backoff, the last good configuration keeps serving");
    }

    fn notify(&self) {
        // Full: a reload is already pending and will read this change too.
        let _ = self.changed.try_send("kubernetes");
    }

    /// The object as the loader will read it, under its synthetic source name.
    fn entry(&self, mut v: Value) -> Option<(Key, Arc<Entry>)> {
        let resource = self.watchers[self.index].resource;
        let meta = v.get_mut("metadata")?.as_object_mut()?;
        // Written by the API server for its own bookkeeping; large and never read here.
        meta.remove("managedFields");
        // Changes with every write, status writes too; `generation` says when the spec changed.
        meta.remove("resourceVersion");
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        let name = meta.get("name")?.as_str()?.to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let obj = v.as_object_mut()?;
        // List items may come without their type; the watcher knows it.
        obj.insert("apiVersion".into(), resource.api_version().into());
        obj.insert("kind".into(), resource.kind.into());
        // The status (ours, or the load balancer's) is not configuration: a write of it must
        // not look like a change and start a compile.
        obj.remove("status");
        let text = serde_json::to_string_pretty(&v).ok()?;
        let source_name = if namespace.is_empty() {
            format!("kubernetes:{}/{name}", resource.resource())
        } else {
            format!("kubernetes:{}/{namespace}/{name}", resource.resource())
        };
        Some((
            (self.index, namespace, name),
            Arc::new(Entry {
                name: source_name.into(),
                text: text.into(),
                parsed: OnceLock::new(),
            }),
        ))
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Error {
        Error::Kube(Box::new(e))
    }
}

/// Logs, every ten seconds while it lasts, that the view of the cluster may be stale.
pub fn report_staleness(source: Arc<Kubernetes>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let stale = source.staleness();
            if stale > Duration::ZERO {
                tracing::warn!(
                    stale_seconds = stale.as_secs(),
                    failing = ?source.failing(),
                    "the view of the cluster may be stale; the last good configuration keeps serving"
                );
            }
        }
    });
}

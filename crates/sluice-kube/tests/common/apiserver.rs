//! An API server stand-in for tests: real list and watch over HTTP/1.1 on 127.0.0.1, as
//! kube-rs (and client-go) speak them. One global resourceVersion counter and an event log;
//! a watch replays the log after its resourceVersion, then streams new events and BOOKMARKs;
//! a resourceVersion older than the last compaction gets `410 Gone` (as an ERROR event, as the
//! real server sends it), so the client lists again. Create/replace with optimistic
//! concurrency (Leases), server-side apply of `status`, the metadata projection
//! (`as=PartialObjectMetadata`), resources that are not served (404, a CRD not installed),
//! and an outage switch (503 and closed watches) for restarts.
#![allow(dead_code)]
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// `group/plural`: objects are stored once whatever version a client asks for.
type Res = (String, String);

#[derive(Clone, Debug)]
pub struct StatusWrite {
    pub manager: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(Res, String, String), Value>,
    /// (resourceVersion, resource, namespace, type, object)
    log: Vec<(u64, Res, String, &'static str, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    compacted: u64,
    absent_groups: HashSet<String>,
    down: bool,
    /// Bumped to end every open watch (with an ERROR 410 when `expire` is set).
    epoch: u64,
    expire: bool,
    status_writes: Vec<StatusWrite>,
    lists: BTreeMap<String, usize>,
    watches: BTreeMap<String, usize>,
    uid: u64,
}

pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// The plural kubectl and the API use for a kind.
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if let Some(stem) = k
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else if k.ends_with('s') {
        format!("{k}es")
    } else {
        format!("{k}s")
    }
}

fn res_of(obj: &Value) -> Res {
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (
        group.to_string(),
        plural(obj["kind"].as_str().unwrap_or_default()),
    )
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn full(status: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

/// Only the metadata, as the API server projects it for `as=PartialObjectMetadata`.
fn projected(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"].clone()})
}

fn timestamp(n: u64) -> String {
    format!(
        "2026-11-30T{:02}:{:02}:{:02}Z",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60
    )
}

impl ApiServer {
    pub async fn start() -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<State>> = Arc::default();
        let (changed, _) = watch::channel(0u64);
        let (s, c) = (state.clone(), changed.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (s, c) = (s.clone(), c.clone());
                        async move { Ok::<_, Infallible>(handle(req, s, c).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ApiServer {
            addr,
            state,
            changed,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        sluice_kube::client(kube::Config::new(self.url().parse().unwrap())).unwrap()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Creates or updates an object (as `kubectl apply` would: a new generation when the spec
    /// changes).
    pub fn apply(&self, mut obj: Value) -> u64 {
        let mut st = self.state.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        let res = res_of(&obj);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let key = (res.clone(), ns.clone(), name);
        let old = st.objects.get(&key).cloned();
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        let meta = obj["metadata"].as_object_mut().unwrap();
        meta.insert("resourceVersion".into(), rv.to_string().into());
        match &old {
            Some(o) => {
                for k in ["uid", "creationTimestamp"] {
                    meta.insert(k.into(), o["metadata"][k].clone());
                }
                let same_spec = o.get("spec") == obj.get("spec");
                let g = o["metadata"]["generation"].as_i64().unwrap_or(1);
                obj["metadata"]["generation"] = json!(if same_spec { g } else { g + 1 });
                if obj.get("status").is_none() {
                    if let Some(s) = o.get("status") {
                        obj["status"] = s.clone();
                    }
                }
            }
            None => {
                st.uid += 1;
                meta.insert("uid".into(), format!("uid-{}", st.uid).into());
                meta.insert("creationTimestamp".into(), timestamp(rv).into());
                meta.insert("generation".into(), 1.into());
            }
        }
        st.objects.insert(key, obj.clone());
        st.log.push((rv, res, ns, kind, obj));
        drop(st);
        self.bump();
        rv
    }

    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let res = (group.to_string(), plural(kind));
        if let Some(mut obj) =
            st.objects
                .remove(&(res.clone(), namespace.to_string(), name.to_string()))
        {
            st.rv += 1;
            let rv = st.rv;
            obj["metadata"]["resourceVersion"] = rv.to_string().into();
            st.log
                .push((rv, res, namespace.to_string(), "DELETED", obj));
        }
        drop(st);
        self.bump();
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let st = self.state.lock().unwrap();
        st.objects
            .get(&(
                (group.to_string(), plural(kind)),
                namespace.to_string(),
                name.to_string(),
            ))
            .cloned()
    }

    /// Forgets the event log: every open watch gets `410 Gone` and every client lists again.
    pub fn expire_watches(&self) {
        let mut st = self.state.lock().unwrap();
        st.compacted = st.rv + 1;
        st.log.clear();
        st.epoch += 1;
        st.expire = true;
        drop(st);
        self.bump();
    }

    /// Ends every open watch normally (as the server's timeout does): clients watch again
    /// from their last resourceVersion.
    pub fn restart_watches(&self) {
        let mut st = self.state.lock().unwrap();
        st.epoch += 1;
        st.expire = false;
        drop(st);
        self.bump();
    }

    /// An outage: every request gets 503 and open watches end; `false` ends it.
    pub fn set_down(&self, down: bool) {
        let mut st = self.state.lock().unwrap();
        st.down = down;
        st.epoch += 1;
        st.expire = false;
        drop(st);
        self.bump();
    }

    /// Resources of `group` answer 404 (their CRDs are not installed).
    pub fn not_served(&self, group: &str) {
        self.state
            .lock()
            .unwrap()
            .absent_groups
            .insert(group.to_string());
    }

    pub fn status_writes(&self) -> Vec<StatusWrite> {
        self.state.lock().unwrap().status_writes.clone()
    }

    /// List calls so far for `plural`.
    pub fn lists(&self, plural: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .lists
            .get(plural)
            .copied()
            .unwrap_or(0)
    }

    pub fn watches(&self, plural: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .watches
            .get(plural)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a path names.
struct Target {
    res: Res,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [p] => (*p, None, false),
        [p, n] => (*p, Some(n.to_string()), false),
        [p, n, "status"] => (*p, Some(n.to_string()), true),
        _ => return None,
    };
    Some(Target {
        res: (group.to_string(), plural.to_string()),
        version: version.to_string(),
        namespace,
        name,
        status,
    })
}

fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2F", "/")))
        .collect()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
) -> Response<Body> {
    let Some(t) = parse_path(req.uri().path()) else {
        return full(
            StatusCode::NOT_FOUND,
            &status_body(404, "NotFound", "no such path"),
        );
    };
    {
        let st = state.lock().unwrap();
        if st.down {
            return full(
                StatusCode::SERVICE_UNAVAILABLE,
                &status_body(503, "ServiceUnavailable", "the API server is restarting"),
            );
        }
        if st.absent_groups.contains(&t.res.0) {
            return full(
                StatusCode::NOT_FOUND,
                &status_body(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        }
    }
    let q = query(&req);
    let meta_only = req
        .headers()
        .get("accept")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let method = req.method().clone();
    let manager = q.get("fieldManager").cloned().unwrap_or_default();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match (method, t.name.clone()) {
        (Method::GET, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            let from: u64 = q
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            watch_response(state, changed, t, from, meta_only)
        }
        (Method::GET, None) => list(&state, &t, meta_only),
        (Method::GET, Some(name)) => {
            let st = state.lock().unwrap();
            let key = (t.res.clone(), t.namespace.clone().unwrap_or_default(), name);
            match st.objects.get(&key) {
                Some(o) => full(StatusCode::OK, o),
                None => full(
                    StatusCode::NOT_FOUND,
                    &status_body(404, "NotFound", "not found"),
                ),
            }
        }
        (Method::POST, None) => {
            let obj: Value = serde_json::from_slice(&body).unwrap_or_default();
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            write(&state, &changed, t, name, obj, true)
        }
        (Method::PUT, Some(name)) => {
            let obj: Value = serde_json::from_slice(&body).unwrap_or_default();
            write(&state, &changed, t, name, obj, false)
        }
        (Method::PATCH, Some(name)) if t.status => {
            let patch: Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut st = state.lock().unwrap();
            let key = (
                t.res.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            let Some(mut obj) = st.objects.get(&key).cloned() else {
                return full(
                    StatusCode::NOT_FOUND,
                    &status_body(404, "NotFound", "not found"),
                );
            };
            st.rv += 1;
            let rv = st.rv;
            obj["status"] = patch["status"].clone();
            obj["metadata"]["resourceVersion"] = rv.to_string().into();
            st.objects.insert(key, obj.clone());
            st.log.push((
                rv,
                t.res.clone(),
                t.namespace.clone().unwrap_or_default(),
                "MODIFIED",
                obj.clone(),
            ));
            st.status_writes.push(StatusWrite {
                manager,
                kind: obj["kind"].as_str().unwrap_or_default().to_string(),
                namespace: t.namespace.clone().unwrap_or_default(),
                name: name.clone(),
                status: patch["status"].clone(),
            });
            drop(st);
            changed.send_modify(|n| *n += 1);
            full(StatusCode::OK, &obj)
        }
        _ => full(
            StatusCode::METHOD_NOT_ALLOWED,
            &status_body(405, "MethodNotAllowed", "not supported by the stand-in"),
        ),
    }
}

/// Create (POST) or replace (PUT, with the resourceVersion the client read: 409 otherwise).
fn write(
    state: &Arc<Mutex<State>>,
    changed: &watch::Sender<u64>,
    t: Target,
    name: String,
    mut obj: Value,
    create: bool,
) -> Response<Body> {
    let mut st = state.lock().unwrap();
    let ns = t.namespace.clone().unwrap_or_default();
    let key = (t.res.clone(), ns.clone(), name);
    let existing = st.objects.get(&key).cloned();
    match (&existing, create) {
        (Some(_), true) => {
            return full(
                StatusCode::CONFLICT,
                &status_body(409, "AlreadyExists", "already exists"),
            )
        }
        (None, false) => {
            return full(
                StatusCode::NOT_FOUND,
                &status_body(404, "NotFound", "not found"),
            )
        }
        (Some(old), false) => {
            if obj["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] {
                return full(
                    StatusCode::CONFLICT,
                    &status_body(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again"),
                );
            }
        }
        (None, true) => {}
    }
    st.rv += 1;
    let rv = st.rv;
    obj["metadata"]["resourceVersion"] = rv.to_string().into();
    if !ns.is_empty() {
        obj["metadata"]["namespace"] = ns.clone().into();
    }
    if existing.is_none() {
        st.uid += 1;
        obj["metadata"]["uid"] = format!("uid-{}", st.uid).into();
        obj["metadata"]["creationTimestamp"] = timestamp(rv).into();
    }
    st.objects.insert(key, obj.clone());
    let kind = if existing.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    st.log.push((rv, t.res, ns, kind, obj.clone()));
    drop(st);
    changed.send_modify(|n| *n += 1);
    full(
        if create {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &obj,
    )
}

fn matches(t: &Target, res: &Res, ns: &str) -> bool {
    *res == t.res && t.namespace.as_deref().is_none_or(|n| n == ns)
}

fn list(state: &Arc<Mutex<State>>, t: &Target, meta_only: bool) -> Response<Body> {
    let mut st = state.lock().unwrap();
    *st.lists.entry(t.res.1.clone()).or_default() += 1;
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((res, ns, _), _)| matches(t, res, ns))
        .map(|(_, o)| {
            let mut o = if meta_only { projected(o) } else { o.clone() };
            // Items of a real list come without their type.
            if !meta_only {
                if let Some(m) = o.as_object_mut() {
                    m.remove("apiVersion");
                    m.remove("kind");
                }
            }
            o
        })
        .collect();
    let (api_version, kind) = if meta_only {
        (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadataList".to_string(),
        )
    } else if t.res.0.is_empty() {
        (t.version.clone(), "List".to_string())
    } else {
        (format!("{}/{}", t.res.0, t.version), "List".to_string())
    };
    full(
        StatusCode::OK,
        &json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
    )
}

fn watch_response(
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    t: Target,
    from: u64,
    meta_only: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut wake = changed.subscribe();
    tokio::spawn(async move {
        let line = |v: Value| Bytes::from(v.to_string() + "\n");
        let (epoch, gone) = {
            let mut st = state.lock().unwrap();
            *st.watches.entry(t.res.1.clone()).or_default() += 1;
            (st.epoch, from < st.compacted)
        };
        if gone {
            let _ = tx
                .send(line(json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")})))
                .await;
            return;
        }
        let mut last = from;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (events, now_rv, ended, expire) = {
                let st = state.lock().unwrap();
                let events: Vec<(u64, &'static str, Value)> = st
                    .log
                    .iter()
                    .filter(|(rv, res, ns, _, _)| *rv > last && matches(&t, res, ns))
                    .map(|(rv, _, _, ty, o)| {
                        (*rv, *ty, if meta_only { projected(o) } else { o.clone() })
                    })
                    .collect();
                (events, st.rv, st.epoch != epoch || st.down, st.expire)
            };
            if ended {
                if expire {
                    let _ = tx
                        .send(line(json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")})))
                        .await;
                }
                return;
            }
            if events.is_empty() && now_rv > last {
                // Nothing of ours changed: a BOOKMARK moves the client's resourceVersion on.
                let (api_version, kind) = if meta_only {
                    (
                        "meta.k8s.io/v1".to_string(),
                        "PartialObjectMetadata".to_string(),
                    )
                } else {
                    (
                        if t.res.0.is_empty() {
                            t.version.clone()
                        } else {
                            format!("{}/{}", t.res.0, t.version)
                        },
                        "Bookmark".to_string(),
                    )
                };
                let bookmark = json!({"type": "BOOKMARK", "object": {"apiVersion": api_version, "kind": kind,
                    "metadata": {"resourceVersion": now_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}});
                if tx.send(line(bookmark)).await.is_err() {
                    return;
                }
                last = now_rv;
            }
            for (rv, ty, obj) in events {
                if tx
                    .send(line(json!({"type": ty, "object": obj})))
                    .await
                    .is_err()
                {
                    return;
                }
                last = rv;
            }
            tokio::select! {
                r = wake.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

//! Gateway API status, written by the leader only: the conditions `sluice status` prints
//! (the same pure function), by server-side apply with sluice's field manager, and only when
//! they differ from what the object already has (times aside). A Gateway's `status.addresses`
//! come from the load balancer of the instance's own Service.
use crate::resources::RESOURCES;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};
use sluice_compile::gateway_status::{gateway_api_status, CONTROLLER};
use sluice_compile::GatewayIdentity;
use sluice_config::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// The server-side apply field manager: the fields sluice owns in `status`.
pub const FIELD_MANAGER: &str = CONTROLLER;

/// What a status writer did, for logs and tests.
#[derive(Default)]
pub struct Writes {
    pub applied: AtomicUsize,
    pub unchanged: AtomicUsize,
}

/// The running writer; dropping it stops it.
pub struct StatusWriter {
    pub writes: Arc<Writes>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StatusWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes status whenever a new store serves or leadership is gained, while `leading` says
/// so.
pub fn spawn(
    client: Client,
    identity: GatewayIdentity,
    mut leading: watch::Receiver<bool>,
    mut stores: watch::Receiver<Option<Arc<Store>>>,
) -> StatusWriter {
    let writes = Arc::new(Writes::default());
    let counters = writes.clone();
    let task = tokio::spawn(async move {
        // What this replica last wrote (or found), times blanked: no write when equal.
        let mut written: HashMap<(String, String, String), Value> = HashMap::new();
        loop {
            tokio::select! {
                r = leading.changed() => if r.is_err() { return },
                r = stores.changed() => if r.is_err() { return },
            }
            if !*leading.borrow_and_update() {
                // Another replica writes now; what it writes is not known here.
                written.clear();
                continue;
            }
            let Some(store) = stores.borrow_and_update().clone() else {
                continue;
            };
            write_all(&client, &identity, &store, &mut written, &counters).await;
        }
    });
    StatusWriter { writes, task }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The status with every `lastTransitionTime` removed, to compare.
fn timeless(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "lastTransitionTime")
                .map(|(k, v)| (k.clone(), timeless(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(timeless).collect()),
        other => other.clone(),
    }
}

fn api_for(client: &Client, kind: &str, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
    let group = match kind {
        "Ingress" => "networking.k8s.io",
        _ => "gateway.networking.k8s.io",
    };
    let r = RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.group == group)?;
    let ar = r.api_resource();
    Some(match namespace {
        Some(ns) if r.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    })
}

async fn write_all(
    client: &Client,
    identity: &GatewayIdentity,
    store: &Store,
    written: &mut HashMap<(String, String, String), Value>,
    writes: &Writes,
) {
    let (objects, _) = gateway_api_status(store, identity, &now());
    let addresses = own_addresses(client, identity).await;
    let mut updates: Vec<(&str, &str, Option<String>, String, Value)> = Vec::new();
    for o in &objects {
        let Ok(mut status) = serde_json::to_value(&o.status) else {
            continue;
        };
        if o.kind == "Gateway" && !addresses.is_empty() {
            status["addresses"] = Value::Array(addresses.clone());
        }
        let (ns, name) = (o.metadata.namespace.clone(), o.metadata.name.clone());
        updates.push((o.api_version, o.kind, ns, name, status));
    }
    // Ingresses we serve get the gateway Service's load balancer, as Istio's ingress status.
    if !addresses.is_empty() {
        let lb: Vec<Value> = addresses
            .iter()
            .map(|a| match a["type"].as_str() {
                Some("Hostname") => json!({"hostname": a["value"]}),
                _ => json!({"ip": a["value"]}),
            })
            .collect();
        for i in
            sluice_compile::compile::ingress::served_ingresses(store, &identity.ingress_classes)
        {
            let status = json!({"loadBalancer": {"ingress": lb}});
            updates.push((
                "networking.k8s.io/v1",
                "Ingress",
                Some(i.namespace.clone()),
                i.name.clone(),
                status,
            ));
        }
    }
    for (api_version, kind, ns, name, status) in updates {
        let o = Update {
            api_version,
            kind,
            namespace: ns,
            name,
        };
        let ns = o.namespace.clone();
        let key = (
            o.kind.to_string(),
            ns.clone().unwrap_or_default(),
            o.name.clone(),
        );
        let Some(api) = api_for(client, o.kind, ns.as_deref()) else {
            continue;
        };
        let want = timeless(&status);
        if !written.contains_key(&key) {
            // New leader: what the object carries already (a previous leader wrote it).
            if let Ok(Some(live)) = api.get_opt(&o.name).await {
                if let Some(s) = live.data.get("status") {
                    written.insert(key.clone(), timeless(s));
                }
            }
        }
        if written.get(&key) == Some(&want) {
            writes.unchanged.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let patch = json!({
            "apiVersion": o.api_version,
            "kind": o.kind,
            "metadata": {"name": o.name},
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api
            .patch_status(&o.name, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(_) => {
                writes.applied.fetch_add(1, Ordering::Relaxed);
                written.insert(key, want);
            }
            Err(e) => {
                tracing::warn!(kind = o.kind, name = %o.name, error = %e, "cannot write status")
            }
        }
    }
}

/// One object's status to write.
struct Update<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<String>,
    name: String,
}

/// `status.addresses` for Gateways: the load balancer ingress of the instance's own Service
/// (in its namespace, selecting its labels), as Istio reports its gateway Service.
async fn own_addresses(client: &Client, identity: &GatewayIdentity) -> Vec<Value> {
    let api: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), &identity.namespace);
    let Ok(list) = api.list(&Default::default()).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for svc in list.items {
        let selects = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|sel| !sel.is_empty() && sluice_api::meta::selects(sel, &identity.labels));
        if !selects {
            continue;
        }
        let ingress = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default();
        for i in ingress {
            if let Some(ip) = i.ip {
                out.push(json!({"type": "IPAddress", "value": ip}));
            } else if let Some(h) = i.hostname {
                out.push(json!({"type": "Hostname", "value": h}));
            }
        }
    }
    out
}

//! One status writer among N replicas: a `coordination.k8s.io/v1` Lease, taken when free or
//! expired and renewed while held, with optimistic concurrency (the API server refuses a
//! replace from a stale read, so two replicas never both take it). Expiry is judged as
//! client-go judges it: by how long this replica has seen the same record unchanged, on its
//! own clock, so clock skew between nodes does not matter.
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub namespace: String,
    pub name: String,
    /// This replica (the pod name).
    pub identity: String,
    /// A holder that has not renewed for this long has lost the Lease.
    pub duration: Duration,
    /// How often the holder renews (and others look).
    pub renew_every: Duration,
}

impl LeaseOptions {
    /// A 15 s Lease (client-go's default), renewed every 5 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaseOptions {
        LeaseOptions {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// A running election; dropping it stops this replica from taking part (a leader then simply
/// stops renewing, and another takes over when the Lease expires).
pub struct Election {
    /// Whether this replica leads now.
    pub leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Election {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the election in the background.
pub fn elect(client: Client, opts: LeaseOptions) -> Election {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &opts.namespace);
        let mut seen: Option<(String, Instant)> = None;
        let mut renewed: Option<Instant> = None;
        loop {
            let mut wait = opts.renew_every;
            let leading = match round(&api, &opts, &mut seen).await {
                Ok(true) => {
                    renewed = Some(Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    // Try again soon: a leader has until its Lease expires to renew.
                    wait = opts.renew_every / 4;
                    tracing::warn!(lease = %opts.name, error = %e, "cannot read or renew the leader Lease");
                    // Still ours until it could have expired for the others.
                    renewed.is_some_and(|t| t.elapsed() < opts.duration)
                }
            };
            if *tx.borrow() != leading {
                tracing::info!(lease = %opts.name, identity = %opts.identity, leading, "leadership changed");
                tx.send_replace(leading);
            }
            tokio::time::sleep(wait).await;
        }
    });
    Election { leading: rx, task }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// One look at the Lease: take it, renew it, or leave it. `seen` is the record last seen
/// (holder and renew time) and when it was first seen so.
async fn round(
    api: &Api<Lease>,
    opts: &LeaseOptions,
    seen: &mut Option<(String, Instant)>,
) -> Result<bool, kube::Error> {
    let secs = i32::try_from(opts.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&opts.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(opts.name.clone()),
                namespace: Some(opts.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(opts.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let record = format!(
        "{holder}@{}",
        spec.renew_time
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default()
    );
    // Unchanged since when (on this replica's clock)?
    let since = match seen {
        Some((r, at)) if *r == record => *at,
        _ => {
            *seen = Some((record, Instant::now()));
            Instant::now()
        }
    };
    let held_duration = spec
        .lease_duration_seconds
        .map_or(opts.duration, |s| Duration::from_secs(s.max(0) as u64));
    let ours = holder == opts.identity;
    let free = holder.is_empty() || since.elapsed() >= held_duration;
    if !ours && !free {
        return Ok(false);
    }
    if !ours {
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.acquire_time = Some(now());
        spec.holder_identity = Some(opts.identity.clone());
        tracing::info!(lease = %opts.name, previous = %holder, "taking over the leader Lease");
    }
    spec.renew_time = Some(now());
    spec.lease_duration_seconds = Some(secs);
    // `replace` sends the resourceVersion read above: a concurrent taker makes this a 409.
    match api
        .replace(&opts.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

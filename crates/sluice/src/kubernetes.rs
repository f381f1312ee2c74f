//! `sluice run --kubernetes`: the cluster as the source, and status written by the replica
//! holding the leader Lease.
use crate::{run, IdentityArgs, KubeArgs};
use std::sync::Arc;

/// Turns a file-mode configuration into a Kubernetes one.
pub async fn configure(
    kube: &KubeArgs,
    identity: &IdentityArgs,
    config: &mut run::Config,
) -> Result<(), String> {
    let client_config =
        sluice_kube::client_config(kube.kubeconfig.as_deref(), kube.context.as_deref())
            .await
            .map_err(|e| e.to_string())?;
    let client = sluice_kube::client(client_config).map_err(|e| e.to_string())?;
    let secret_namespaces = if kube.secret_namespaces.is_empty() {
        vec![identity.namespace.clone()]
    } else {
        kube.secret_namespaces.clone()
    };
    let source = Arc::new(sluice_kube::Kubernetes::new(
        client.clone(),
        &sluice_kube::Options {
            watch_namespaces: kube.watch_namespaces.clone(),
            secret_namespaces,
            ..Default::default()
        },
    ));
    sluice_kube::report_staleness(source.clone());
    if !kube.no_status {
        let me = kube
            .pod_name
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("sluice-{}", std::process::id()));
        let election = sluice_kube::leader::elect(
            client.clone(),
            sluice_kube::leader::LeaseOptions::new(&identity.namespace, &kube.leader_lease, &me),
        );
        let (stores_tx, stores) = tokio::sync::watch::channel(None);
        let writer = sluice_kube::status::spawn(
            client.clone(),
            identity.identity(),
            election.leading.clone(),
            stores,
        );
        // The election and the writer live as long as the reload loop that feeds them.
        config.on_served = Some(Box::new(move |built| {
            let _keep = (&election, &writer);
            stores_tx.send_replace(Some(built.store.clone()));
        }));
    }
    config.source = source;
    // The cluster's configuration arrives over time and may be broken for a while: start
    // empty and not ready rather than exit.
    config.must_compile_first = false;
    Ok(())
}

//! Kubernetes mode: the API server as a configuration [`sluice_source::Source`] (kube-rs
//! watchers), a leader elected with a `coordination.k8s.io` Lease, and the status that leader
//! writes (Gateway API conditions by server-side apply).
#![forbid(unsafe_code)]

pub mod leader;
mod resources;
mod source;
pub mod status;

pub use resources::{Watched, RESOURCES};
pub use source::{report_staleness, Kubernetes, Options};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(Box<kube::Error>),
    #[error("cannot read the Kubernetes client configuration: {0}")]
    Config(String),
}

/// A client for `config` without kube's built-in retry of 429/503/504 (up to 15 tries,
/// minutes in all): during an outage a request would hang there unseen. The watchers retry
/// with their own backoff instead, and say how stale the view is meanwhile.
pub fn client(mut config: kube::Config) -> Result<kube::Client, Error> {
    config.default_retry = false;
    Ok(kube::Client::try_from(config)?)
}

/// The client configuration: in-cluster when running in a pod, else the kubeconfig
/// (`KUBECONFIG` or `~/.kube/config`, optionally a file and a context).
pub async fn client_config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Config, Error> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let result = match (kubeconfig, context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| Error::Config(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await,
        (None, None) => {
            return kube::Config::infer()
                .await
                .map_err(|e| Error::Config(e.to_string()))
        }
    };
    result.map_err(|e| Error::Config(e.to_string()))
}

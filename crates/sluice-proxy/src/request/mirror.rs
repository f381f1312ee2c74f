//! Mirrors: a copy of the request sent to another cluster and forgotten, bounded in flight,
//! never slowing or failing the main request.
use super::forward::{Context, Outgoing};
use crate::body::RequestBody;
use bytes::Bytes;
use http::header::HeaderValue;
use std::time::Duration;

impl Context<'_> {
    /// Sends a copy of the request to `cluster` and forgets it: bounded in flight, the answer
    /// discarded, never slowing or failing the main request.
    pub(super) fn mirror(&self, cluster: &str, out: &Outgoing, body: Bytes) {
        let Some(balancer) = self.dp.clusters.get(cluster).cloned() else {
            return;
        };
        let Ok(permit) = self.shared.mirror_slots.clone().try_acquire_owned() else {
            tracing::debug!(cluster, "mirror skipped: too many in flight");
            return;
        };
        let Ok(in_flight) = balancer.pick(None, None) else {
            return;
        };
        let sent = self.send(
            &balancer,
            in_flight.endpoint(),
            out,
            out.headers.clone(),
            RequestBody::Buffered(Some(body)),
            true,
        );
        let limit = self.route.policy.timeout.unwrap_or(Duration::from_secs(30));
        tokio::spawn(async move {
            let _permit = permit;
            let _in_flight = in_flight;
            let _ = tokio::time::timeout(limit, async {
                // Read to the end, so a pooled connection goes back to its pool.
                if let Ok(resp) = sent.run(balancer.limits()).await {
                    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                }
            })
            .await;
        });
    }
}

/// `host` → `host-shadow`, before any port.
pub(super) fn shadow_host(host: Option<&HeaderValue>) -> Option<HeaderValue> {
    let host = host?.to_str().ok()?;
    let shadow = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => format!("{h}-shadow:{p}"),
        _ => format!("{host}-shadow"),
    };
    HeaderValue::from_str(&shadow).ok()
}

//! The tries of a request: an endpoint picked per try (never the previous one when another
//! exists), Envoy's retry conditions, backoff and retry budget, per-try timeouts; each try's
//! outcome feeds outlier detection.
use super::forward::{tunnel, Context, Outgoing, Switched};
use super::record::Record;
use super::reply::{grpc_status, local, Failure};
use crate::body::{full, Prepared, ProxyBody, RequestBody};
use crate::cluster::{ClusterRuntime, NoPick, Tracked};
use crate::metrics::Flags;
use crate::outlier::Outcome;
use crate::pool::SendError;
use http::{Response, StatusCode};
use rand::Rng;
use sluice_compile::policy::Retry;
use std::sync::Arc;
use std::time::Duration;

impl Context<'_> {
    /// Tries the request, retrying on another endpoint as the route's retry policy (and the
    /// cluster's retry budget) allows; each try's outcome feeds outlier detection.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempts(
        &self,
        balancer: &Arc<ClusterRuntime>,
        mut out: Outgoing,
        body: Prepared,
        downstream_upgrade: Option<crate::h1::server::OnUpgrade>,
        deadline: Option<tokio::time::Instant>,
        hash: Option<u64>,
        rec: &mut Record,
    ) -> Response<ProxyBody> {
        let retry: &Retry = &self.route.policy.retry;
        let (replay, mut once) = match body {
            Prepared::Replayable(b) => (Some(b), None),
            Prepared::Once(b) => (None, Some(b)),
        };
        // A body that cannot be replayed, or a protocol switch, gets one try.
        let tries = if replay.is_some() && downstream_upgrade.is_none() {
            retry.retries + 1
        } else {
            1
        };
        let mut previous = None;
        let mut failure = Failure::NoHealthyUpstream;
        // A retry slot taken when a response was judged worth retrying, then held while the
        // retry is in flight (`maxRetries` counts retries in flight).
        let mut granted = None;
        let mut _held = None;
        for attempt in 0..tries {
            if attempt > 0 {
                // Envoy's retry circuit breaker: over it the last failure stands.
                match granted.take().or_else(|| balancer.retry_permit()) {
                    Some(slot) => _held = slot,
                    None => {
                        rec.flags |= Flags::URX;
                        break;
                    }
                }
                tokio::time::sleep(backoff(retry.backoff, attempt)).await;
            }
            let in_flight = match balancer.pick(hash, previous) {
                Ok(f) => f,
                Err(NoPick::NoHealthy) => return Failure::NoHealthyUpstream.reply(self.grpc),
                Err(NoPick::Overflow) => return Failure::Overflow.reply(self.grpc),
            };
            let index = in_flight.index();
            previous = Some(index);
            let body = match &replay {
                Some(b) => RequestBody::Buffered(Some(b.clone())),
                None => once.take().expect("a single try"),
            };
            let more = attempt + 1 < tries;
            // The last try takes the headers; earlier ones send a copy.
            let headers = if more {
                out.headers.clone()
            } else {
                std::mem::take(&mut out.headers)
            };
            // The log names where the last try went (UF, UC, UT lines too).
            rec.upstream = Some(in_flight.endpoint().authority.clone());
            // Upstream service time is for the access log only: no clock read without it.
            let sent_at = rec.logging().then(std::time::Instant::now);
            let sent = self
                .send(balancer, in_flight.endpoint(), &out, headers, body, false)
                .run(balancer.limits());
            let result = match retry.per_try_timeout {
                Some(t) => tokio::time::timeout(t, sent).await.map_err(|_| ()),
                None => Ok(sent.await),
            };
            match result {
                Ok(Ok(resp)) => {
                    rec.upstream_time = sent_at.map(|t| t.elapsed());
                    balancer.record(index, Outcome::Status(resp.status().as_u16()));
                    let grpc_status = grpc_status(resp.headers());
                    if more && retry.retries_status(resp.status().as_u16(), grpc_status) {
                        granted = balancer.retry_permit();
                        if granted.is_some() {
                            tracing::debug!(status = resp.status().as_u16(), attempt, "retrying");
                            continue;
                        }
                    }
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        let Some(downstream) = downstream_upgrade else {
                            // Passed on, the client would read the backend's new protocol as
                            // HTTP (Envoy answers 502 too).
                            return local(
                                StatusCode::BAD_GATEWAY,
                                Flags::UPE,
                                "upstream protocol error",
                                self.grpc,
                            );
                        };
                        let mut answer = Response::new(full(""));
                        *answer.status_mut() = resp.status();
                        *answer.headers_mut() = resp.headers().clone();
                        match Switched::of(resp) {
                            Some(upstream) => tunnel(downstream, upstream),
                            None => return Failure::Reset.reply(self.grpc),
                        }
                        return answer;
                    }
                    let (parts, body) = resp.into_parts();
                    return Response::from_parts(parts, Tracked::boxed(body, in_flight, deadline));
                }
                Ok(Err(SendError::Overflow)) => return Failure::Overflow.reply(self.grpc),
                Ok(Err(e @ (SendError::Connect(_) | SendError::Certificate(_)))) => {
                    balancer.record(index, Outcome::Local { timeout: false });
                    match &e {
                        SendError::Certificate(why) => {
                            crate::upstream_tls::warn_certificate_failure(
                                &balancer.cluster.name,
                                why,
                            )
                        }
                        _ => {
                            tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream connect failed")
                        }
                    }
                    failure = Failure::Connect;
                    if !retry.retries_connect_failure() {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    balancer.record(index, Outcome::Local { timeout: false });
                    tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream reset");
                    failure = Failure::Reset;
                    if !retry.retries_reset() {
                        break;
                    }
                }
                Err(()) => {
                    balancer.record(index, Outcome::Local { timeout: true });
                    failure = Failure::Timeout;
                    if !retry.retries_reset() {
                        break;
                    }
                }
            }
        }
        failure.reply(self.grpc)
    }
}

/// Jittered exponential backoff (Envoy's): uniform in `0..base·2^(n-1)`, capped at 10× base.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let cap = base * 10;
    let ceiling = base.saturating_mul(1 << (attempt - 1).min(16)).min(cap);
    let nanos = ceiling.as_nanos().max(1) as u64;
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

//! Fault injection: a delay (flag DI) and an abort (flag FI), each by its percentage.
use super::reply::{flagged, grpc_reply, local};
use crate::body::ProxyBody;
use crate::metrics::Flags;
use http::{Response, StatusCode};
use rand::Rng;
use sluice_compile::policy::{Abort, Fault};

/// Sleeps for an injected delay (adding DI to `flags`), then answers an injected abort, or
/// `None` to go on.
pub(super) async fn inject(
    fault: &Fault,
    grpc: bool,
    flags: &mut Flags,
) -> Option<Response<ProxyBody>> {
    if let Some((delay, pct)) = fault.delay {
        if roll(pct) {
            tokio::time::sleep(delay).await;
            *flags |= Flags::DI;
        }
    }
    let (abort, pct) = fault.abort?;
    roll(pct).then(|| abort_reply(abort, grpc))
}

fn abort_reply(abort: Abort, grpc: bool) -> Response<ProxyBody> {
    match abort {
        Abort::Http(status) => local(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Flags::FI,
            "fault filter abort",
            grpc,
        ),
        Abort::Grpc(code) => {
            let mut resp = grpc_reply(code, "fault filter abort");
            flagged(&mut resp, Flags::FI);
            resp
        }
    }
}

/// True `percentage` % of the time.
pub(super) fn roll(percentage: f64) -> bool {
    percentage >= 100.0 || (percentage > 0.0 && rand::rng().random::<f64>() * 100.0 < percentage)
}

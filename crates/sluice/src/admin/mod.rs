//! The ports Istio's gateways have besides traffic, served by one small hyper server:
//! readiness (`/healthz/ready`, :15021), Prometheus metrics (`/stats/prometheus`, :15090) and
//! the admin port (:15000, loopback by default: it shows the whole configuration and changes
//! the log level). Each port is optional; all of them listen before the instance can be ready.
mod text;
mod ui;

use crate::logging::LogControl;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_proxy::Gateway;
use sluice_source::Readiness;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the three ports listen (`None`: not served) and the log control `/logging` uses.
pub struct Options {
    pub ready_address: Option<SocketAddr>,
    pub stats_address: Option<SocketAddr>,
    pub admin_address: Option<SocketAddr>,
    pub logging: LogControl,
}

impl Options {
    /// No port served.
    pub fn new(logging: LogControl) -> Options {
        Options {
            ready_address: None,
            stats_address: None,
            admin_address: None,
            logging,
        }
    }
}

/// What every port answers from.
pub struct AdminState {
    pub readiness: Readiness,
    /// The snapshot now serving and the data plane's view of its clusters.
    pub gateway: Arc<Gateway>,
    /// Istio's metrics, the gateway's own and the reloads', encoded when scraped.
    pub metrics: prometheus_client::registry::Registry,
    pub logging: LogControl,
}

impl AdminState {
    /// Requests so far by cluster name (for `/ui` and `/clusters`).
    fn request_counts(&self) -> HashMap<String, u64> {
        self.gateway.metrics().requests_by_cluster()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    Ready,
    Stats,
    Admin,
}

impl Port {
    fn flag(self) -> &'static str {
        match self {
            Port::Ready => "--ready-address",
            Port::Stats => "--stats-address",
            Port::Admin => "--admin-address",
        }
    }

    /// The log line tests and operators read the bound address from.
    fn announce(self, addr: SocketAddr) {
        match self {
            Port::Ready => tracing::info!(%addr, "readiness endpoint listening"),
            Port::Stats => tracing::info!(%addr, "stats endpoint listening"),
            Port::Admin => tracing::info!(%addr, "admin endpoint listening"),
        }
    }
}

/// The admin port's pages, for the index and the 404.
const PAGES: [(&str, &str); 8] = [
    ("/ui", "the routing drawn: listeners, servers, hosts, routes, clusters, endpoints, with request counts"),
    ("/config_dump", "the compiled snapshot as JSON"),
    ("/clusters", "clusters and endpoints: limits, requests so far, weight, priority, locality"),
    ("/routes", "route tables: virtual hosts, routes, their source and clusters"),
    ("/explain?host=H&path=P", "what the gateway does with one request (also method, port, protocol, sni, header=name:value, format=json)"),
    ("/logging", "the log filter; ?level=debug (or sluice_proxy=debug,info) changes it"),
    ("/stats/prometheus", "metrics in Prometheus' text format"),
    ("/", "this list"),
];

/// Binds every configured port, then answers on them in the background. Nothing is served
/// unless every port could be bound.
pub async fn serve(
    options: Options,
    readiness: Readiness,
    gateway: Arc<Gateway>,
    reloads: Arc<sluice_source::ReloadStats>,
) -> Result<(), String> {
    let ports = [
        (Port::Ready, options.ready_address),
        (Port::Stats, options.stats_address),
        (Port::Admin, options.admin_address),
    ];
    let mut bound = Vec::new();
    for (port, addr) in ports {
        let Some(addr) = addr else { continue };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr} ({}): {e}", port.flag()))?;
        bound.push((port, listener));
    }
    let state = Arc::new(AdminState {
        readiness,
        metrics: crate::telemetry::registry(&gateway, reloads),
        gateway,
        logging: options.logging,
    });
    for (port, listener) in bound {
        if let Ok(addr) = listener.local_addr() {
            port.announce(addr);
        }
        tokio::spawn(accept(port, listener, state.clone()));
    }
    Ok(())
}

async fn accept(port: Port, listener: tokio::net::TcpListener, state: Arc<AdminState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most likely: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let state = state.clone();
                // Pages are built from memory; a compile-sized snapshot renders in milliseconds.
                async move { Ok::<_, std::convert::Infallible>(answer(port, &state, &req)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", body)
}

/// The query string's parameters, decoded, in order (a name may repeat).
fn query<B>(req: &Request<B>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn answer<B>(port: Port, state: &AdminState, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let allowed = matches!(*req.method(), Method::GET | Method::HEAD)
        || (*req.method() == Method::POST && path == "/logging");
    if !allowed {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only (POST for /logging)\n",
        );
    }
    match (port, path) {
        (Port::Ready, "/healthz/ready") => {
            let mut resp = if state.readiness.is_ready() {
                plain(StatusCode::OK, "")
            } else {
                plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            };
            // A stale view still serves (see ARCHITECTURE: Readiness); it is only reported.
            let stale = state.readiness.staleness().as_secs();
            if stale > 0 {
                resp.headers_mut()
                    .insert("x-sluice-config-stale-seconds", HeaderValue::from(stale));
            }
            resp
        }
        // Envoy's admin answers metrics too.
        (Port::Stats | Port::Admin, "/stats/prometheus") => {
            let text = crate::telemetry::render(&state.metrics);
            reply(StatusCode::OK, crate::telemetry::CONTENT_TYPE, text)
        }
        (Port::Admin, _) => admin(state, req),
        _ => plain(StatusCode::NOT_FOUND, ""),
    }
}

fn admin<B>(state: &AdminState, req: &Request<B>) -> Response<Full<Bytes>> {
    let snapshot = state.gateway.snapshot();
    match req.uri().path() {
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            ui::index(&PAGES),
        ),
        "/ui" => {
            let counts = state.request_counts();
            reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                ui::page(&snapshot, &counts),
            )
        }
        "/config_dump" => {
            let mut dump = sluice_compile::dump::dump(&snapshot);
            text::add_health(&mut dump, &state.gateway.clusters_view());
            reply(StatusCode::OK, "application/json", crate::pretty(&dump))
        }
        "/clusters" => {
            let counts = state.request_counts();
            plain(
                StatusCode::OK,
                text::clusters(&state.gateway.clusters_view(), &counts),
            )
        }
        "/routes" => plain(
            StatusCode::OK,
            text::routes(&sluice_compile::dump::dump(&snapshot)),
        ),
        "/logging" => logging(&state.logging, &query(req)),
        "/explain" => explain(&snapshot, &query(req)),
        _ => {
            let known: Vec<&str> = PAGES.iter().map(|(p, _)| *p).collect();
            plain(
                StatusCode::NOT_FOUND,
                format!("not found; the admin port serves {}\n", known.join(", ")),
            )
        }
    }
}

fn logging(control: &LogControl, query: &[(String, String)]) -> Response<Full<Bytes>> {
    if let Some((_, level)) = query.iter().find(|(k, _)| k == "level") {
        if let Err(e) = control.set_level(level) {
            return plain(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    }
    plain(StatusCode::OK, format!("level: {}\n", control.level()))
}

fn explain(
    snapshot: &sluice_compile::Snapshot,
    query: &[(String, String)],
) -> Response<Full<Bytes>> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let headers: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "header")
        .map(|(_, v)| v.clone())
        .collect();
    let port = match param("port").map(|p| p.parse::<u32>()) {
        None => 80,
        Some(Ok(p)) => p,
        Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "port: expected a number\n"),
    };
    let question = crate::explain::Question::new(
        param("protocol").as_deref().unwrap_or("http"),
        port,
        param("host"),
        param("sni"),
        param("path").unwrap_or_else(|| "/".into()),
        param("method").unwrap_or_else(|| "GET".into()),
        &headers,
    );
    let e = match question {
        Ok(q) => q.explain(snapshot),
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if param("format").as_deref() == Some("json") {
        reply(StatusCode::OK, "application/json", crate::pretty(&e))
    } else {
        plain(StatusCode::OK, crate::explain::text(&e))
    }
}

//! End-to-end harness: echo backends on OS-picked loopback ports, a gateway on OS-picked ports,
//! and a client that says which pod answered.
#![allow(dead_code)]

pub mod pki;
pub mod raw;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sluice_compile::{compile, GatewayIdentity, Snapshot};
use sluice_config::Loader;
use sluice_echo::{Echo, Identity};
use sluice_proxy::{Gateway, ServerOptions};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn snapshot(yaml: &str, labels: &[(&str, &str)]) -> Arc<Snapshot> {
    let mut id = GatewayIdentity::default();
    if !labels.is_empty() {
        id.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    snapshot_for(yaml, &id)
}

/// The snapshot an instance with identity `id` serves for `yaml` (refused configs panic).
pub fn snapshot_for(yaml: &str, id: &GatewayIdentity) -> Arc<Snapshot> {
    let mut l = Loader::new();
    l.add_text("test.yaml".into(), yaml);
    let loaded = l.finish();
    let (store, diags) = sluice_compile::admit(&loaded, &Default::default());
    let store = store.unwrap_or_else(|| panic!("refused: {diags:#?}"));
    Arc::new(compile(&store, id).0)
}

/// Starts an echo backend per identity, on 127.0.0.1 and a free port.
pub async fn backends(ids: Vec<Identity>) -> Vec<Echo> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            Echo::start("127.0.0.1:0".parse().unwrap(), id)
                .await
                .expect("echo backend"),
        );
    }
    out
}

/// The seed's three demo pods: two v1, one v3.
pub async fn demo_pods() -> Vec<Echo> {
    backends(vec![
        Identity::new("demo", "v1", "demo-v1-a"),
        Identity::new("demo", "v1", "demo-v1-b"),
        Identity::new("demo", "v3", "demo-v3-a"),
    ])
    .await
}

/// The seed configuration from `examples/seed`, pointed at the given backends.
pub fn seed_yaml(pods: &[Echo]) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut yaml = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    for (i, p) in pods.iter().enumerate() {
        yaml = yaml.replace(&format!("{}", 18001 + i), &p.addr.port().to_string());
    }
    yaml
}

pub fn test_options() -> ServerOptions {
    ServerOptions {
        bind_address: "127.0.0.1".parse().unwrap(),
        drain_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    }
}

/// A gateway serving `snapshot`, each bind port on a free loopback port.
pub fn gateway(snapshot: Arc<Snapshot>, opts: ServerOptions) -> Gateway {
    let gw = Gateway::new(opts);
    for port in snapshot.listeners.keys() {
        gw.prebind(*port, std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    }
    gw.apply(snapshot).expect("apply");
    gw
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// `pod` of the echo backend that answered, or the status when the gateway answered.
    pub fn who(&self) -> String {
        if self.status == StatusCode::OK {
            self.json()["pod"].as_str().unwrap_or("?").to_string()
        } else {
            self.status.as_u16().to_string()
        }
    }
}

#[derive(Clone)]
pub struct TestClient {
    client: Client<HttpConnector, Full<Bytes>>,
    pub addr: SocketAddr,
}

impl TestClient {
    pub fn http1(addr: SocketAddr) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    pub fn http2(addr: SocketAddr) -> TestClient {
        TestClient {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            addr,
        }
    }

    pub async fn get(&self, host: &str, path: &str) -> Reply {
        self.send("GET", host, path, &[], Bytes::new()).await
    }

    pub async fn send(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.addr, path))
            .header("host", host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .client
            .request(b.body(Full::new(body)).unwrap())
            .await
            .expect("request");
        let (parts, body) = resp.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("body").to_bytes(),
        }
    }
}

/// Counts answers by `who()`.
pub async fn tally(
    client: &TestClient,
    host: &str,
    path: &str,
    n: usize,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        *out.entry(client.get(host, path).await.who()).or_default() += 1;
    }
    out
}

/// The proxy's answer is one `explain` allows: a forward answered by an endpoint of one of the
/// clusters it names, or the same local status.
pub fn agree(e: &sluice_compile::explain::Explanation, r: &Reply, pods: &[Echo]) {
    if e.action == "forward" && e.error.is_none() {
        assert_eq!(r.status, 200, "{e:?}");
        let pod = r.who();
        let addr = pods
            .iter()
            .find(|p| p.id.pod == pod)
            .map(|p| p.addr.to_string())
            .unwrap_or_default();
        assert!(
            e.clusters
                .iter()
                .any(|c| c.weight > 0 && c.endpoints.contains(&addr)),
            "{pod} at {addr} is not in {e:?}"
        );
    } else {
        assert_eq!(Some(r.status.as_u16()), e.status, "{e:?}");
    }
}

/// A STATIC ServiceEntry for `<name>.default.svc.cluster.local:8000` over the given pods, with
/// each pod's `version` label and endpoint weight.
pub fn service_entry(name: &str, pods: &[(&Echo, u32)]) -> String {
    service_entry_speaking(name, pods, "HTTP")
}

/// `service_entry` whose port has the given protocol (HTTP2, GRPC, TCP…).
pub fn service_entry_speaking(name: &str, pods: &[(&Echo, u32)], protocol: &str) -> String {
    let endpoints: String = pods
        .iter()
        .map(|(p, w)| {
            format!(
                "    - {{address: 127.0.0.1, ports: {{http: {}}}, labels: {{version: {}}}, weight: {w}}}\n",
                p.addr.port(),
                p.id.version
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  hosts: [{name}.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 8000, name: http, protocol: {protocol}}}]\n  endpoints:\n{endpoints}---\n"
    )
}

/// A gateway whose only route (`route` appended to it, YAML) goes to one backend at `addr`.
pub fn gateway_to_backend(addr: SocketAddr, route: &str, opts: ServerOptions) -> Gateway {
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: app, namespace: default}}\n\
         spec:\n  hosts: [app.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 8000, name: http, protocol: HTTP}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{http: {}}}}}]\n---\n",
        addr.port()
    ) + &app_routes(&format!("    - route: [{{destination: {{host: app}}}}]{route}"));
    gateway(snapshot(&yaml, &[]), opts)
}

/// A Gateway for every host on port 80, and a VirtualService `app` for every host whose `http`
/// list is `http` (YAML, indented by four spaces).
pub fn app_routes(http: &str) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  selector: {{istio: ingressgateway}}
  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: ["*"]}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: app, namespace: default}}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
{http}
"#
    )
}

/// An HTTP/2 connection (prior knowledge, or ALPN h2 on TLS) over `io`, driven in the background.
pub async fn http2_sender<IO, B>(io: IO) -> hyper::client::conn::http2::SendRequest<B>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    send
}

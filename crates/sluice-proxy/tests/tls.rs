//! TLS at the gateway with certificates made at test time: SNI selection, mutual TLS, minimum
//! versions, client-certificate forwarding and 421 on coalesced HTTP/2 requests.
mod common;
use bytes::Bytes;
use common::pki::*;
use common::*;
use http_body_util::{BodyExt, Empty};
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_echo::Identity;
use std::sync::Arc;
use tokio::net::TcpStream;

fn secret(name: &str, leaf: &Leaf, ca: Option<&Ca>) -> String {
    let ca = ca.map(Ca::pem);
    tls_secret(name, &leaf.cert_pem, &leaf.key_pem, ca.as_deref())
}

struct World {
    ca: Ca,
    shop: Leaf,
    blog: Leaf,
    gw: sluice_proxy::Gateway,
    _pods: Vec<sluice_echo::Echo>,
}

async fn world() -> World {
    let ca = Ca::new("test root");
    let shop = ca.leaf(&["shop.example"]);
    let blog = ca.leaf(&["blog.example"]);
    let api = ca.leaf(&["*.api.example"]);
    let any = ca.leaf(&["mtls.example", "opt.example", "modern.example"]);
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + &secret("shop-cert", &shop, None)
        + &secret("blog-cert", &blog, None)
        + &secret("api-cert", &api, None)
        + &secret("mtls-cert", &any, Some(&ca))
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: https-shop, protocol: HTTPS}
      hosts: [shop.example]
      tls: {mode: SIMPLE, credentialName: shop-cert}
    - port: {number: 443, name: https-blog, protocol: HTTPS}
      hosts: [blog.example]
      tls: {mode: SIMPLE, credentialName: blog-cert}
    - port: {number: 443, name: https-api, protocol: HTTPS}
      hosts: ["*.api.example"]
      tls: {mode: SIMPLE, credentialName: api-cert}
    - port: {number: 443, name: https-mtls, protocol: HTTPS}
      hosts: [mtls.example]
      tls: {mode: MUTUAL, credentialName: mtls-cert}
    - port: {number: 443, name: https-opt, protocol: HTTPS}
      hosts: [opt.example]
      tls: {mode: OPTIONAL_MUTUAL, credentialName: mtls-cert}
    - port: {number: 443, name: https-modern, protocol: HTTPS}
      hosts: [modern.example]
      tls: {mode: SIMPLE, credentialName: mtls-cert, minProtocolVersion: TLSV1_3}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    World {
        ca,
        shop,
        blog,
        gw,
        _pods: pods,
    }
}

type Tls = ClientTls;

async fn connect(w: &World, sni: &str, config: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    tls_connect(w.gw.local_addr(443).unwrap(), sni, config).await
}

async fn get(tls: Tls, host: &str) -> Result<Reply, hyper::Error> {
    tls_get(tls, host).await
}

fn served_cert(tls: &Tls) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_host_gets_its_own_certificate_by_sni() {
    let w = world().await;
    let plain = client_config(&w.ca, None, false, false);
    let tls = connect(&w, "shop.example", plain.clone()).await.unwrap();
    assert_eq!(served_cert(&tls), w.shop.der);
    let r = get(tls, "shop.example").await.unwrap();
    assert_eq!(r.who(), "pod");
    assert_eq!(r.json()["headers"]["x-forwarded-proto"], "https");

    let tls = connect(&w, "blog.example", plain.clone()).await.unwrap();
    assert_eq!(served_cert(&tls), w.blog.der);
    assert_eq!(get(tls, "blog.example").await.unwrap().who(), "pod");

    // Wildcard server.
    let tls = connect(&w, "v2.api.example", plain.clone()).await.unwrap();
    assert_eq!(get(tls, "v2.api.example").await.unwrap().who(), "pod");

    // No server for this SNI and no catch-all: the handshake fails.
    assert!(connect(&w, "unknown.example", plain).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_good_client_certificate() {
    let w = world().await;
    let good = w.ca.leaf(&[
        "client.example",
        "spiffe://cluster.local/ns/default/sa/client",
    ]);
    let other_ca = Ca::new("other root");
    let bad = other_ca.leaf(&["client.example"]);

    let tls = connect(
        &w,
        "mtls.example",
        client_config(&w.ca, Some(&good), false, false),
    )
    .await
    .unwrap();
    let r = get(tls, "mtls.example").await.unwrap();
    assert_eq!(r.who(), "pod");
    let xfcc = r.json()["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(xfcc.starts_with("Hash="), "{xfcc}");
    assert!(
        xfcc.contains("URI=spiffe://cluster.local/ns/default/sa/client"),
        "{xfcc}"
    );
    assert!(xfcc.contains("DNS=client.example"), "{xfcc}");

    // Without a certificate, or with one from another CA: no request gets through. (With TLS
    // 1.3 the client learns of the refusal on its first read, not during connect.)
    for client in [None, Some(&bad)] {
        let refused = match connect(
            &w,
            "mtls.example",
            client_config(&w.ca, client, false, false),
        )
        .await
        {
            Err(_) => true,
            Ok(tls) => get(tls, "mtls.example").await.is_err(),
        };
        assert!(
            refused,
            "client cert {:?} must be refused",
            client.map(|_| "bad")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_mutual_tls_both_ways_and_forged_xfcc_is_dropped() {
    let w = world().await;
    let good = w.ca.leaf(&["client.example"]);
    let tls = connect(&w, "opt.example", client_config(&w.ca, None, false, false))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", "opt.example")
        .header("x-forwarded-client-cert", "Hash=forged")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = send
        .send_request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        seen["headers"].get("x-forwarded-client-cert").is_none(),
        "{seen}"
    );

    let tls = connect(
        &w,
        "opt.example",
        client_config(&w.ca, Some(&good), false, false),
    )
    .await
    .unwrap();
    let r = get(tls, "opt.example").await.unwrap();
    assert!(r.json()["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap()
        .contains("DNS=client.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimum_tls_version_is_enforced() {
    let w = world().await;
    assert!(connect(
        &w,
        "modern.example",
        client_config(&w.ca, None, true, false)
    )
    .await
    .is_err());
    let tls = connect(
        &w,
        "modern.example",
        client_config(&w.ca, None, false, false),
    )
    .await
    .unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    // Other servers still accept TLS 1.2.
    let tls = connect(&w, "shop.example", client_config(&w.ca, None, true, false))
        .await
        .unwrap();
    assert_eq!(get(tls, "shop.example").await.unwrap().who(), "pod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_http2_request_for_another_server_gets_421_and_an_unserved_host_404() {
    let w = world().await;
    let tls = connect(&w, "shop.example", client_config(&w.ca, None, false, true))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut send = http2_sender(tls).await;
    // Another server of the port serves blog.example: 421; no server serves nobody.example: 404.
    for (authority, want) in [
        ("shop.example", 200),
        ("blog.example", 421),
        ("nobody.example", 404),
        ("shop.example", 200),
    ] {
        let req = hyper::Request::get(format!("https://{authority}/"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{authority}");
    }
}

fn upstream_world(backend: std::net::SocketAddr, tls: &str, secrets: &str) -> String {
    format!(
        r#"{secrets}
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: app, namespace: default}}
spec:
  hosts: [app.internal]
  resolution: STATIC
  ports: [{{number: 8443, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: app, namespace: default}}
spec:
  host: app.internal
  trafficPolicy:
    tls: {tls}
---
{routes}"#,
        port = backend.port(),
        routes = app_routes("    - route: [{destination: {host: app.internal}}]"),
    )
}

fn ca_secret(name: &str, ca: &Ca, client: Option<&Leaf>) -> String {
    let mut s = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: istio-system}}\nstringData:\n  ca.crt: |\n{}",
        indent(&ca.pem())
    );
    if let Some(c) = client {
        s += &format!(
            "  tls.crt: |\n{}  tls.key: |\n{}",
            indent(&c.cert_pem),
            indent(&c.key_pem)
        );
    }
    s + "---\n"
}

/// One request for host `a` through a gateway whose DestinationRule speaks `tls` to `backend`.
async fn through_upstream_tls(backend: std::net::SocketAddr, tls: &str, secrets: &str) -> Reply {
    let gw = gateway(
        snapshot(&upstream_world(backend, tls, secrets), &[]),
        test_options(),
    );
    let r = TestClient::http1(gw.local_addr(80).unwrap())
        .get("a", "/")
        .await;
    gw.shutdown().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_simple_tls_with_a_private_ca_and_san_checks() {
    let ca = Ca::new("backend root");
    let backend = tls_backend(&ca, &["app.internal"], None).await;
    let secrets = ca_secret("backend-ca", &ca, None);
    let cases = [
        ("{mode: SIMPLE, credentialName: backend-ca}", 200),
        ("{mode: SIMPLE, credentialName: backend-ca, sni: app.internal, subjectAltNames: [app.internal]}", 200),
        ("{mode: SIMPLE, credentialName: backend-ca, subjectAltNames: [other.internal]}", 503),
        ("{mode: SIMPLE, sni: app.internal}", 503),
        ("{mode: SIMPLE, insecureSkipVerify: true}", 200),
    ];
    for (tls, want) in cases {
        let r = through_upstream_tls(backend, tls, &secrets).await;
        assert_eq!(r.status.as_u16(), want, "{tls}: {:?}", r.body);
        if want == 200 {
            assert_eq!(&r.body[..], b"secure");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mutual_tls_presents_the_gateway_certificate() {
    let ca = Ca::new("backend root");
    let backend = tls_backend(&ca, &["app.internal"], Some(&ca)).await;
    let gateway_cert = ca.leaf(&["gateway.internal"]);
    let secrets = ca_secret("backend-mtls", &ca, Some(&gateway_cert));
    let r = through_upstream_tls(
        backend,
        "{mode: MUTUAL, credentialName: backend-mtls}",
        &secrets,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-client-cert"], "yes");

    // SIMPLE to a backend that requires a client certificate: refused, 503.
    let r = through_upstream_tls(
        backend,
        "{mode: SIMPLE, credentialName: backend-mtls}",
        &secrets,
    )
    .await;
    assert_eq!(r.status, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_loses_nothing() {
    let ca = Ca::new("test root");
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let config_with = |leaf: &Leaf| {
        service_entry("app", &[(&pods[0], 1)])
            + &secret("shop-cert", leaf, None)
            + &app_routes("    - route: [{destination: {host: app}}]").replace(
                r#"[{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]"#,
                "[{port: {number: 443, name: https, protocol: HTTPS}, hosts: [shop.example], tls: {mode: SIMPLE, credentialName: shop-cert}}]",
            )
    };
    let first = ca.leaf(&["shop.example"]);
    let gw = Arc::new(gateway(snapshot(&config_with(&first), &[]), test_options()));
    let addr = gw.local_addr(443).unwrap();
    let client = client_config(&ca, None, false, false);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (client, stop) = (client.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut ok = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tcp = TcpStream::connect(addr).await.unwrap();
                let tls = tokio_rustls::TlsConnector::from(client.clone())
                    .connect(ServerName::try_from("shop.example").unwrap(), tcp)
                    .await
                    .expect("handshake during rotation");
                assert_eq!(
                    get(tls, "shop.example")
                        .await
                        .expect("request during rotation")
                        .who(),
                    "pod"
                );
                ok += 1;
            }
            ok
        }));
    }
    let mut last = first.der.clone();
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let next = ca.leaf(&["shop.example"]);
        gw.apply(snapshot(&config_with(&next), &[])).unwrap();
        last = next.der.clone();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in load {
        total += l.await.unwrap();
    }
    assert!(total > 20, "{total}");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(client)
        .connect(ServerName::try_from("shop.example").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0],
        last,
        "new connections get the new certificate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_mutual_with_mesh_certificates() {
    let mesh = Ca::new("mesh root");
    let backend = tls_backend(
        &mesh,
        &["spiffe://cluster.local/ns/default/sa/app"],
        Some(&mesh),
    )
    .await;
    let gateway_leaf =
        mesh.leaf(&["spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"]);
    let dir = std::env::temp_dir().join(format!("sluice-mesh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert-chain.pem"), &gateway_leaf.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &gateway_leaf.key_pem).unwrap();
    std::fs::write(dir.join("root-cert.pem"), mesh.pem()).unwrap();
    let id = sluice_compile::GatewayIdentity {
        mesh_certs: Some(sluice_compile::tls::MeshCerts { dir: dir.clone() }),
        ..Default::default()
    };
    for (identity, want) in [
        ("spiffe://cluster.local/ns/default/sa/app", 200),
        ("spiffe://cluster.local/ns/default/sa/other", 503),
    ] {
        let yaml = upstream_world(backend, "{mode: ISTIO_MUTUAL}", "").replace(
            "  resolution: STATIC\n",
            &format!("  resolution: STATIC\n  subjectAltNames: [\"{identity}\"]\n"),
        );
        let gw = gateway(snapshot_for(&yaml, &id), test_options());
        let r = TestClient::http1(gw.local_addr(80).unwrap())
            .get("a", "/")
            .await;
        assert_eq!(r.status.as_u16(), want, "{identity}");
        if want == 200 {
            assert_eq!(
                r.headers["x-client-cert"], "yes",
                "the gateway presented its mesh certificate"
            );
        }
        gw.shutdown().await;
    }
    // Without mesh certificates the cluster cannot be reached: 503.
    let yaml = upstream_world(backend, "{mode: ISTIO_MUTUAL}", "");
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    assert_eq!(
        TestClient::http1(gw.local_addr(80).unwrap())
            .get("a", "/")
            .await
            .status,
        503
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// TLS HTTP/1.1 clusters go through the endpoints' own pools, so the DestinationRule's
/// connection limits hold for them too: a burst over `maxConnections: 1` and one pending request
/// gets 503 UO, and the one connection is reused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_clusters_keep_the_connection_limits() {
    let ca = Ca::new("backend root");
    let backend = tls_backend(&ca, &["app.internal"], None).await;
    let yaml = upstream_world(backend, "{mode: SIMPLE, insecureSkipVerify: true}", "").replace(
        "  trafficPolicy:\n    tls:",
        "  trafficPolicy:\n    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}\n    tls:",
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let c = TestClient::http1(gw.local_addr(80).unwrap());
    let replies = futures_util::future::join_all((0..20).map(|_| {
        let c = c.clone();
        async move { c.get("a", "/").await }
    }))
    .await;
    let overflow = replies.iter().filter(|r| r.status == 503).count();
    assert!(overflow > 0, "no request overflowed");
    assert!(replies
        .iter()
        .filter(|r| r.status == 503)
        .all(|r| r.headers["x-envoy-overloaded"] == "true"));
    assert!(replies
        .iter()
        .any(|r| r.status == 200 && &r.body[..] == b"secure"));
    for _ in 0..5 {
        assert_eq!(&c.get("a", "/").await.body[..], b"secure");
    }
}

//! TCP routes and TLS passthrough through real sockets.
mod common;
use common::pki::*;
use common::*;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP server that greets with `name\n` and then echoes until the client half-closes.
async fn tcp_echo(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                s.write_all(format!("{name}\n").as_bytes()).await.unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => s.write_all(&buf[..n]).await.unwrap(),
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A TCP server on Gateway port 9000 for every host, and the head of a VirtualService `tcp`
/// bound to it (its `tcp:` list follows).
const TCP_9000: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 9000, name: tcp, protocol: TCP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
"#;

fn tcp_service(name: &str, addr: SocketAddr, protocol: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  hosts: [{name}.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 7000, name: tcp, protocol: {protocol}}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{tcp: {}}}}}]\n---\n",
        addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_route_with_a_weighted_split_and_half_close() {
    let a = tcp_echo("A").await;
    let b = tcp_echo("B").await;
    let yaml = tcp_service("a", a, "TCP")
        + &tcp_service("b", b, "TCP")
        + TCP_9000
        + r#"  tcp:
    - match: [{port: 9000}]
      route:
        - {destination: {host: a, port: {number: 7000}}, weight: 75}
        - {destination: {host: b, port: {number: 7000}}, weight: 25}
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let addr = gw.local_addr(9000).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..400 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let msg = format!("hello {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        // Half-close: the echo ends when it sees our end, and the gateway passes that on.
        s.shutdown().await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let (who, rest) = out.split_once('\n').unwrap();
        assert_eq!(rest, msg);
        *counts.entry(who.to_string()).or_insert(0) += 1;
    }
    // Binomial(400, 0.75): 6 standard deviations is ±52.
    assert!((248..=352).contains(&counts["A"]), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_passthrough_routes_by_sni_without_terminating() {
    let ca = Ca::new("backend root");
    let one = tls_backend(&ca, &["one.secure.example"], None).await;
    let two = tls_backend(&ca, &["two.secure.example"], None).await;
    let yaml = tcp_service("one", one, "TLS")
        + &tcp_service("two", two, "TLS")
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: tls, protocol: TLS}
      hosts: ["*.secure.example"]
      tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pass, namespace: default}
spec:
  hosts: ["*.secure.example"]
  gateways: [gw]
  tls:
    - match: [{sniHosts: [one.secure.example]}]
      route: [{destination: {host: one, port: {number: 7000}}}]
    - match: [{sniHosts: ["*.secure.example"]}]
      route: [{destination: {host: two, port: {number: 7000}}}]
"#;
    let snap = snapshot(&yaml, &[]);
    let gw = gateway(snap.clone(), test_options());
    let addr = gw.local_addr(443).unwrap();
    let config = client_config(&ca, None, false, false);
    for (sni, backend_name) in [
        ("one.secure.example", "one.secure.example"),
        ("two.secure.example", "two.secure.example"),
    ] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        // The backend's own certificate reaches the client: verification against the backend
        // CA for this exact name succeeds only if the gateway did not terminate.
        let mut tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
            .await
            .unwrap_or_else(|e| panic!("{sni}: {e}"));
        let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
        assert!(parsed.subject().to_string().contains(backend_name));
        tls.write_all(
            format!("GET / HTTP/1.1\r\nhost: {sni}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out).await;
        assert!(
            String::from_utf8_lossy(&out).ends_with("secure"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    // An SNI no route takes: the connection is closed.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let r = tokio_rustls::TlsConnector::from(config)
        .connect(
            ServerName::try_from("other.example".to_string()).unwrap(),
            tcp,
        )
        .await;
    assert!(r.is_err());
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 443,
            host: Some("one.secure.example"),
            sni: None,
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    assert_eq!(
        e.cluster.as_deref(),
        Some("outbound|7000||one.default.svc.cluster.local")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_terminated_at_the_gateway_then_tcp() {
    let a = tcp_echo("A").await;
    let ca = Ca::new("gateway root");
    let leaf = ca.leaf(&["db.example"]);
    let yaml = tcp_service("a", a, "TCP")
        + &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db-cert, namespace: istio-system}}\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n",
            indent(&leaf.cert_pem),
            indent(&leaf.key_pem)
        )
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 9443, name: tls, protocol: TLS}
      hosts: [db.example]
      tls: {mode: SIMPLE, credentialName: db-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example]
  gateways: [gw]
  tcp: [{route: [{destination: {host: a, port: {number: 7000}}}]}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let config = client_config(&ca, None, false, false);
    let tcp = TcpStream::connect(gw.local_addr(9443).unwrap())
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("db.example").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0],
        leaf.der,
        "the gateway's certificate"
    );
    tls.write_all(b"ping").await.unwrap();
    tls.shutdown().await.unwrap();
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out).await;
    assert_eq!(out, "A\nping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connections_close_after_the_destination_rule_timeout() {
    let a = tcp_echo("A").await;
    let yaml = tcp_service("a", a, "TCP")
        + TCP_9000
        + r#"  tcp: [{route: [{destination: {host: a, port: {number: 7000}}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: default}
spec:
  host: a
  trafficPolicy: {connectionPool: {tcp: {idleTimeout: 300ms}}}
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let mut s = TcpStream::connect(gw.local_addr(9000).unwrap())
        .await
        .unwrap();
    let mut greeting = [0u8; 2];
    s.read_exact(&mut greeting).await.unwrap();
    // Activity keeps it open...
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        s.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
    }
    // ...silence closes it.
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("closed by the gateway")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250),
        "{waited:?}"
    );
}

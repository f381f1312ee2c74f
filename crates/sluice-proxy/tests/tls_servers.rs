//! TLS servers as Istio reads them, over real sockets: the docs' `protocol: HTTPS` passthrough
//! form, terminating and passthrough servers sharing port 443 (chosen by SNI), a bad
//! certificate that leaves every other server serving, an X.509 v1 certificate, and
//! `httpsRedirect` on a terminating server.
mod common;
use common::pki::*;
use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_echo::Identity;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

fn secret(name: &str, cert_pem: &str, key_pem: &str) -> String {
    tls_secret(name, cert_pem, key_pem, None)
}

/// A TLS ServiceEntry `name` on port 7000 (its endpoint at `addr`).
fn tls_service(name: &str, addr: SocketAddr) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  hosts: [{name}.default.svc.cluster.local]\n  resolution: STATIC\n  \
         ports: [{{number: 7000, name: tls, protocol: TLS}}]\n  \
         endpoints: [{{address: 127.0.0.1, ports: {{tls: {}}}}}]\n---\n",
        addr.port()
    )
}

type Tls = ClientTls;

async fn connect(addr: SocketAddr, sni: &str, config: Arc<rustls::ClientConfig>) -> Tls {
    tls_connect(addr, sni, config)
        .await
        .unwrap_or_else(|e| panic!("{sni}: {e}"))
}

async fn get(tls: Tls, host: &str) -> Reply {
    tls_get(tls, host).await.unwrap()
}

fn subject(tls: &Tls) -> String {
    let cert = &tls.get_ref().1.peer_certificates().unwrap()[0];
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    parsed.subject().to_string()
}

/// The configuration of Istio's "Ingress Gateway without TLS Termination" task: a server of
/// protocol HTTPS with mode PASSTHROUGH, and a VirtualService `tls` route on SNI and port 443.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_passthrough_server_routes_by_sni() {
    let ca = Ca::new("nginx root");
    let nginx = tls_backend(&ca, &["nginx.example.com"], None).await;
    let yaml = tls_service("my-nginx", nginx)
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway, namespace: default}
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: PASSTHROUGH
    hosts:
    - nginx.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: nginx, namespace: default}
spec:
  hosts:
  - nginx.example.com
  gateways:
  - mygateway
  tls:
  - match:
    - port: 443
      sniHosts:
      - nginx.example.com
    route:
    - destination:
        host: my-nginx
        port:
          number: 7000
"#;
    let snap = snapshot(&yaml, &[]);
    let gw = gateway(snap.clone(), test_options());
    let addr = gw.local_addr(443).expect("a listener on 443");
    // The backend's certificate reaches the client: the gateway did not terminate.
    let tls = connect(
        addr,
        "nginx.example.com",
        client_config(&ca, None, false, false),
    )
    .await;
    assert!(subject(&tls).contains("nginx.example.com"));
    let r = get(tls, "nginx.example.com").await;
    assert_eq!(&r.body[..], b"secure");
    let e = sluice_compile::explain::explain(
        &snap,
        &sluice_compile::explain::Request {
            port: 443,
            host: None,
            sni: Some("nginx.example.com"),
            path: "/",
            method: "GET",
            headers: &[],
        },
    );
    assert_eq!(e.action, "forward");
    assert_eq!(
        e.cluster.as_deref(),
        Some("outbound|7000||my-nginx.default.svc.cluster.local")
    );
    // Another SNI has no route: the connection is closed, nothing is served.
    let other = tls_connect(
        addr,
        "other.example.com",
        client_config(&ca, None, false, false),
    );
    assert!(other.await.is_err());
}

/// One port, two filter chains: SIMPLE for shop.example (terminated, HTTP routed) and
/// PASSTHROUGH for *.secure.example (the backend's own TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_and_passthrough_servers_share_a_port() {
    let gw_ca = Ca::new("gateway root");
    let backend_ca = Ca::new("backend root");
    let shop = gw_ca.leaf(&["shop.example"]);
    let secure = tls_backend(&backend_ca, &["db.secure.example"], None).await;
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + &tls_service("db", secure)
        + &secret("shop-cert", &shop.cert_pem, &shop.key_pem)
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
    - port: {number: 443, name: tls-secure, protocol: TLS}
      hosts: ["*.secure.example"]
      tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: ["*.secure.example"]
  gateways: [gw]
  tls:
    - match: [{sniHosts: [db.secure.example]}]
      route: [{destination: {host: db, port: {number: 7000}}}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let addr = gw.local_addr(443).unwrap();
    for _ in 0..3 {
        let tls = connect(
            addr,
            "shop.example",
            client_config(&gw_ca, None, false, false),
        )
        .await;
        assert!(subject(&tls).contains("shop.example"));
        let r = get(tls, "shop.example").await;
        assert_eq!(r.who(), "pod");
        let tls = connect(
            addr,
            "db.secure.example",
            client_config(&backend_ca, None, false, false),
        )
        .await;
        assert!(subject(&tls).contains("db.secure.example"));
        assert_eq!(&get(tls, "db.secure.example").await.body[..], b"secure");
    }
}

/// A Secret whose certificate is not PEM: that server is left out at apply, the other server of
/// port 443 and port 80 keep serving (one bad certificate used to stop the whole process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_leaves_every_other_server_serving() {
    let ca = Ca::new("gateway root");
    let good = ca.leaf(&["good.example"]);
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + &secret("good-cert", &good.cert_pem, &good.key_pem)
        + &secret("bad-cert", "this is not a certificate\n", &good.key_pem)
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 80, name: http, protocol: HTTP}
      hosts: ["*"]
    - port: {number: 443, name: https-good, protocol: HTTPS}
      hosts: [good.example]
      tls: {mode: SIMPLE, credentialName: good-cert}
    - port: {number: 443, name: https-bad, protocol: HTTPS}
      hosts: [bad.example]
      tls: {mode: SIMPLE, credentialName: bad-cert}
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
    let plain = TestClient::http1(gw.local_addr(80).unwrap());
    assert_eq!(plain.get("any.example", "/").await.who(), "pod");
    let addr = gw.local_addr(443).unwrap();
    let tls = connect(addr, "good.example", client_config(&ca, None, false, false)).await;
    assert_eq!(get(tls, "good.example").await.who(), "pod");
    let tcp = TcpStream::connect(addr).await.unwrap();
    let bad = tokio_rustls::TlsConnector::from(client_config(&ca, None, false, false))
        .connect(ServerName::try_from("bad.example").unwrap(), tcp)
        .await;
    assert!(
        bad.is_err(),
        "the server without a usable certificate is left out"
    );
}

/// Accepts any server certificate: webpki (rustls' verifier) refuses X.509 v1 certificates,
/// which OpenSSL-based clients such as curl accept. The test compares the certificate instead.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "the test client speaks TLS 1.3".into(),
        ))
    }
    /// Checks the handshake signature against the certificate's key, read with x509-parser.
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../testdata/x509-v1/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The secure-gateways task's Gateway and VirtualService for httpbin, TLS `mode` given.
fn httpbin_task(pod: &sluice_echo::Echo, credential: String, mode: &str) -> String {
    service_entry("httpbin", &[(pod, 1)])
        + &credential
        + &r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mygateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    tls: {mode: MODE, credentialName: httpbin-credential}
    hosts: [httpbin.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.example.com]
  gateways: [mygateway]
  http: [{route: [{destination: {host: httpbin}}]}]
"#
        .replace("MODE", mode)
}

/// The certificate Istio's secure-gateways task makes on OpenSSL 3.0 is X.509 v1; Envoy serves
/// it, and so does sluice (the handshake signature is checked against it by the client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x509_v1_certificate_is_served() {
    use rustls::pki_types::pem::PemObject;
    let (cert, key) = (
        testdata("httpbin.example.com.crt"),
        testdata("httpbin.example.com.key"),
    );
    let pods = backends(vec![Identity::new("httpbin", "v1", "httpbin")]).await;
    let yaml = httpbin_task(
        &pods[0],
        tls_secret("httpbin-credential", &cert, &key, None),
        "SIMPLE",
    );
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let tls = connect(
        gw.local_addr(443).unwrap(),
        "httpbin.example.com",
        v1_client(None),
    )
    .await;
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let want = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    assert_eq!(served, want);
    let (_, parsed) = x509_parser::parse_x509_certificate(served.as_ref()).unwrap();
    assert_eq!(parsed.version(), x509_parser::x509::X509Version::V1);
    assert_eq!(get(tls, "httpbin.example.com").await.who(), "httpbin");
}

/// `httpsRedirect: true` on a server that terminates TLS does nothing, as in Istio: the request
/// is routed (before, sluice redirected HTTPS requests to themselves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirect_on_a_terminating_server_does_nothing() {
    let ca = Ca::new("gateway root");
    let leaf = ca.leaf(&["app.example"]);
    let pods = backends(vec![Identity::new("app", "v1", "pod")]).await;
    let yaml = service_entry("app", &[(&pods[0], 1)])
        + &secret("app-cert", &leaf.cert_pem, &leaf.key_pem)
        + r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [app.example]
      tls: {mode: SIMPLE, credentialName: app-cert, httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
"#;
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let tls = connect(
        gw.local_addr(443).unwrap(),
        "app.example",
        client_config(&ca, None, false, false),
    )
    .await;
    let r = get(tls, "app.example").await;
    assert_eq!(r.status, 200, "{:?}", r.headers.get("location"));
    assert_eq!(r.who(), "pod");
}

/// Presents a fixed client certificate without rustls' key check (which reads the certificate
/// with webpki and refuses v1).
#[derive(Debug)]
struct OneClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OneClientCert {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS 1.3 client that accepts any server certificate and presents `cert`/`key`, if given.
fn v1_client(cert_key: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider.clone())));
    let config = match cert_key {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            let signing = provider.key_provider.load_private_key(key).unwrap();
            let certified = rustls::sign::CertifiedKey::new(chain, signing);
            b.with_client_cert_resolver(Arc::new(OneClientCert(Arc::new(certified))))
        }
    };
    Arc::new(config)
}

/// The Secure Gateways task's MUTUAL step on OpenSSL 3.0: the server and the client
/// certificates are both X.509 v1, signed by the task's root. The client certificate is
/// accepted (as Envoy accepts it); none, or one from another CA, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_x509_v1_client_certificates() {
    let (cert, key, ca) = (
        testdata("httpbin.example.com.crt"),
        testdata("httpbin.example.com.key"),
        testdata("example.com.crt"),
    );
    let pods = backends(vec![Identity::new("httpbin", "v1", "httpbin")]).await;
    let credential = tls_secret("httpbin-credential", &cert, &key, Some(&ca));
    let yaml = httpbin_task(&pods[0], credential, "MUTUAL");
    let gw = gateway(snapshot(&yaml, &[]), test_options());
    let addr = gw.local_addr(443).unwrap();
    let (client_cert, client_key) = (
        testdata("client.example.com.crt"),
        testdata("client.example.com.key"),
    );
    let tls = connect(
        addr,
        "httpbin.example.com",
        v1_client(Some((&client_cert, &client_key))),
    )
    .await;
    let r = get(tls, "httpbin.example.com").await;
    assert_eq!(r.who(), "httpbin");
    let xfcc = r.json()["headers"]["x-forwarded-client-cert"].to_string();
    assert!(xfcc.contains("client.example.com"), "{xfcc}");
    // No client certificate, or one the root did not sign: refused.
    let none = tls_connect(addr, "httpbin.example.com", v1_client(None)).await;
    let refused = match none {
        Err(_) => true,
        Ok(tls) => tls_get(tls, "httpbin.example.com").await.is_err(),
    };
    assert!(refused, "a client without a certificate is refused");
    let stranger = Ca::new("another root").leaf(&["client.example.com"]);
    let other = tls_connect(
        addr,
        "httpbin.example.com",
        v1_client(Some((&stranger.cert_pem, &stranger.key_pem))),
    )
    .await;
    let refused = match other {
        Err(_) => true,
        Ok(tls) => tls_get(tls, "httpbin.example.com").await.is_err(),
    };
    assert!(refused, "a certificate from another CA is refused");
}

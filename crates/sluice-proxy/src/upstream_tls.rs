//! TLS toward backends (DestinationRule `tls` SIMPLE/MUTUAL): a rustls client config per
//! cluster (HTTP/1.1 clusters use it from their endpoints' pools) and, for HTTP/2 clusters, a
//! pooled client that speaks TLS to the cluster's endpoints.
use crate::body::RequestBody;
use crate::tls::{certs, read};
use crate::upstream::UpstreamOptions;
use crate::Error;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sluice_compile::snapshot::Cluster;
use sluice_compile::tls::UpstreamTls;
use std::sync::Arc;

pub type TlsClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// What a TLS connection to a cluster's endpoints needs: the client config and the SNI (the
/// DestinationRule's `sni`, else the service's host name).
#[derive(Clone)]
pub struct TlsConnect {
    pub config: Arc<ClientConfig>,
    pub sni: ServerName<'static>,
}

impl std::fmt::Debug for TlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnect")
            .field("sni", &self.sni)
            .finish()
    }
}

/// The rustls client config of a TLS cluster (no ALPN: HTTP/1.1 endpoints are reached through
/// the endpoints' own pools; `client` adds h2 for HTTP/2 clusters).
pub fn connector(cluster: &Cluster, tls: &UpstreamTls) -> Result<TlsConnect, Error> {
    let err = |reason: String| Error::Tls {
        server: cluster.name.clone(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for c in certs(&read(ca, "CA certificate", &cluster.name)?) {
                roots
                    .add(c)
                    .map_err(|e| err(format!("CA certificate: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?;
    let builder = {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots.clone()), provider.clone())
                .build()
                .map_err(|e| err(e.to_string()))?;
        let names = if tls.insecure_skip_verify {
            Names::Any
        } else if tls.mesh {
            Names::Spiffe {
                roots,
                provider: provider.clone(),
                identities: tls.subject_alt_names.clone(),
            }
        } else {
            Names::Dns(
                tls.subject_alt_names
                    .iter()
                    .filter_map(|n| ServerName::try_from(n.clone()).ok())
                    .collect(),
            )
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(BackendVerifier { webpki, names }))
    };
    let config = match &tls.client_cert {
        Some((cert, key)) => {
            let chain = certs(&read(cert, "client certificate", &cluster.name)?);
            let key = PrivateKeyDer::from_pem_slice(&read(key, "client key", &cluster.name)?)
                .map_err(|e| err(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| err(format!("client certificate and key: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    let sni = tls.sni.clone().unwrap_or_else(|| cluster.host.clone());
    let sni = ServerName::try_from(sni).map_err(|e| err(format!("sni: {e}")))?;
    Ok(TlsConnect {
        config: Arc::new(config),
        sni,
    })
}

/// A pooled client for an HTTP/2 TLS cluster (ALPN h2, connections multiplexed per endpoint).
pub fn client(
    connect: &TlsConnect,
    opts: &UpstreamOptions,
    connect_timeout: std::time::Duration,
) -> TlsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*connect.config).clone())
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(connect.sni.clone()))
        .enable_http2()
        .wrap_connector(http);
    crate::upstream::http2_builder(opts).build(connector)
}

/// Verifies a backend's certificate: the chain by the web PKI rules, and the name either
/// against the DestinationRule's `subjectAltNames` as DNS names (any of them; none: the SNI), or
/// for ISTIO_MUTUAL against the mesh root and SPIFFE identities.
#[derive(Debug)]
struct BackendVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    names: Names,
}

#[derive(Debug)]
enum Names {
    /// `insecureSkipVerify`: any certificate (handshake signatures are still checked).
    Any,
    Dns(Vec<ServerName<'static>>),
    Spiffe {
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
        /// Empty: any workload of the mesh.
        identities: Vec<String>,
    },
}

impl BackendVerifier {
    fn spiffe(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        (roots, provider, identities): (&RootCertStore, &CryptoProvider, &[String]),
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            roots,
            intermediates,
            now,
            provider.signature_verification_algorithms.all,
        )?;
        if identities.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
        let (_, cert) =
            x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| bad())?;
        let presented = cert.subject_alternative_name().ok().flatten().is_some_and(|san| {
            san.value.general_names.iter().any(|n| {
                matches!(n, x509_parser::extensions::GeneralName::URI(u) if identities.iter().any(|i| i == u))
            })
        });
        if presented {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }
}

impl ServerCertVerifier for BackendVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let names = match &self.names {
            Names::Any => return Ok(ServerCertVerified::assertion()),
            Names::Spiffe {
                roots,
                provider,
                identities,
            } => {
                return Self::spiffe(
                    end_entity,
                    intermediates,
                    now,
                    (roots, provider, identities),
                )
            }
            Names::Dns(names) if names.is_empty() => std::slice::from_ref(server_name),
            Names::Dns(names) => names.as_slice(),
        };
        let mut last = None;
        for name in names {
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one name"))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Why a TLS connection to a backend failed, in words, when the cause is the backend's
/// certificate (found along the error's sources); `None` for other failures.
pub fn certificate_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            use rustls::CertificateError as C;
            return Some(match c {
                C::UnknownIssuer => "the backend's certificate is not signed by a trusted CA (caCertificates or credentialName of the DestinationRule)".into(),
                C::NotValidForName | C::NotValidForNameContext { .. } => "the backend's certificate is not valid for the name checked (the DestinationRule's sni or subjectAltNames, else the service host)".into(),
                C::Expired | C::ExpiredContext { .. } => "the backend's certificate has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => "the backend's certificate is not valid yet".into(),
                C::Revoked => "the backend's certificate is revoked".into(),
                C::BadEncoding => "the backend's certificate does not parse".into(),
                other => format!("the backend's certificate was refused: {other}"),
            });
        }
        if let Some(other) = tls {
            return Some(format!("TLS with the backend failed: {other}"));
        }
        next = e.source();
    }
    None
}

/// Certificate failures are configuration problems worth a warning, but a busy route must not
/// write one per request: at most one a second.
pub fn warn_certificate_failure(cluster: &str, reason: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if LAST.swap(now, Ordering::Relaxed) != now {
        tracing::warn!(cluster, "upstream TLS failed: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::certificate_failure;

    /// An error that wraps another, as hyper-util's client error wraps the connector's.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn certificate_failures_say_why() {
        let cert = |c| Wrapped(std::io::Error::other(rustls::Error::InvalidCertificate(c)));
        let why = |e: Wrapped| certificate_failure(&e).unwrap();
        assert!(why(cert(rustls::CertificateError::UnknownIssuer))
            .contains("not signed by a trusted CA"));
        assert!(
            why(cert(rustls::CertificateError::NotValidForName)).contains("not valid for the name")
        );
        assert!(why(cert(rustls::CertificateError::Expired)).contains("expired"));
        let refused = Wrapped(std::io::Error::other("connection refused"));
        assert_eq!(certificate_failure(&refused), None);
    }
}

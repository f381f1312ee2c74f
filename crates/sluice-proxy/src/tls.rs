//! Downstream TLS: rustls server configs built from compiled `TlsSettings`, and what a
//! verified client certificate tells the backend (`x-forwarded-client-cert`).
use crate::Error;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sluice_compile::tls::{ClientAuth, Pem, TlsSettings};
use std::sync::Arc;

/// PEM bytes, inline or read from their file; errors name `owner` (a server or cluster).
pub(crate) fn read(pem: &Pem, what: &str, owner: &str) -> Result<Vec<u8>, Error> {
    match pem {
        Pem::Inline(b) => Ok(b.to_vec()),
        Pem::File(path) => std::fs::read(path).map_err(|e| Error::Tls {
            server: owner.to_string(),
            reason: format!("cannot read {what} {}: {e}", path.display()),
        }),
    }
}

pub fn certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// OpenSSL/Envoy cipher names (as Istio takes them) to rustls suites. TLS 1.3 suites are not
/// configurable in Envoy either and stay enabled.
fn cipher_suite(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite::*;
    Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

fn provider(settings: &TlsSettings) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        p.cipher_suites.retain(|s| {
            matches!(s, SupportedCipherSuite::Tls13(_))
                || settings
                    .cipher_suites
                    .iter()
                    .filter_map(|n| cipher_suite(n))
                    .any(|c| c.suite() == s.suite())
        });
    }
    p
}

/// A rustls server config for one TLS server of a Gateway port.
pub fn server_config(settings: &TlsSettings, server: &str) -> Result<Arc<ServerConfig>, Error> {
    let err = |reason: String| Error::Tls {
        server: server.to_string(),
        reason,
    };
    let chain = certs(&read(&settings.cert_chain, "certificate", server)?);
    if chain.is_empty() {
        return Err(err("the certificate holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&settings.private_key, "private key", server)?)
        .map_err(|e| err(format!("private key: {e}")))?;
    let provider = Arc::new(provider(settings));
    let versions: &[&rustls::SupportedProtocolVersion] =
        match (settings.min_tls13, settings.max_tls12) {
            (true, _) => &[&rustls::version::TLS13],
            (false, true) => &[&rustls::version::TLS12],
            (false, false) => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| err(e.to_string()))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let ca = settings
                .ca
                .as_ref()
                .ok_or_else(|| err("mutual TLS needs a CA certificate".into()))?;
            let mut roots = RootCertStore::empty();
            for c in certs(&read(ca, "CA certificate", server)?) {
                roots
                    .add(c)
                    .map_err(|e| err(format!("CA certificate: {e}")))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| err(e.to_string()))?)
        }
    };
    // Not `with_single_cert`: its key check reads the certificate with webpki, which refuses
    // X.509 v1 certificates that Envoy serves. The pair is checked with x509-parser instead.
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| err(format!("private key: {e}")))?;
    match sluice_compile::pem_check::key_matches(&chain[0], signing.as_ref()) {
        Some(true) => {}
        Some(false) => {
            return Err(err(
                "the certificate and the private key do not belong together".into(),
            ))
        }
        None => return Err(err("the certificate does not parse as X.509".into())),
    }
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signing));
    let mut config = builder.with_cert_resolver(Arc::new(OneCertificate(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server's one certificate, whatever the ClientHello asks.
#[derive(Debug)]
struct OneCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// What the gateway learned from a verified client certificate.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// `x-forwarded-client-cert`, as Envoy writes it: `Hash=…;Subject="…";URI=…;DNS=…`.
    pub xfcc: http::HeaderValue,
}

/// Checks a client certificate against the server's `subjectAltNames`,
/// `verifyCertificateHash` and `verifyCertificateSpki`; `Err` names what did not match.
pub fn check_client_cert(
    settings: &TlsSettings,
    der: &CertificateDer<'_>,
) -> Result<ClientCert, String> {
    let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, der.as_ref()));
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("client certificate does not parse: {e}"))?;
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::URI(u) => uris.push(u.to_string()),
                _ => {}
            }
        }
    }
    if !settings.subject_alt_names.is_empty()
        && !settings
            .subject_alt_names
            .iter()
            .any(|want| dns.contains(want) || uris.contains(want))
    {
        return Err(format!(
            "no subjectAltName of the client certificate ({dns:?} {uris:?}) is allowed"
        ));
    }
    if !settings.verify_hash.is_empty()
        && !settings
            .verify_hash
            .iter()
            .any(|h| h.replace(':', "").eq_ignore_ascii_case(&hash))
    {
        return Err("client certificate hash is not allowed".into());
    }
    if !settings.verify_spki.is_empty() {
        use base64::Engine;
        let spki = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
        let spki = base64::engine::general_purpose::STANDARD.encode(spki.as_ref());
        if !settings.verify_spki.contains(&spki) {
            return Err("client certificate public key (SPKI) is not allowed".into());
        }
    }
    let mut xfcc = format!("Hash={hash};Subject=\"{}\"", cert.subject());
    for u in &uris {
        xfcc.push_str(&format!(";URI={u}"));
    }
    for d in &dns {
        xfcc.push_str(&format!(";DNS={d}"));
    }
    let xfcc = http::HeaderValue::from_str(&xfcc).map_err(|e| e.to_string())?;
    Ok(ClientCert { xfcc })
}

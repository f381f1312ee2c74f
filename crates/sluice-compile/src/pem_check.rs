//! Checks of certificate material that Istio only finds at handshake time: a certificate and a
//! key that do not belong together, PEM that does not parse, an expired certificate.
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoCertificate,
    BadKey(String),
    KeyMismatch,
    /// The `notAfter` date, as the certificate states it.
    Expired(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoCertificate => f.write_str("tls.crt holds no PEM certificate"),
            Problem::BadKey(e) => write!(f, "tls.key is not a usable private key ({e})"),
            Problem::KeyMismatch => f.write_str("tls.crt and tls.key do not belong together"),
            Problem::Expired(when) => write!(f, "the certificate expired on {when}"),
        }
    }
}

/// Everything wrong with a certificate chain and its key; `now_unix` enables the expiry check.
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8], now_unix: Option<i64>) -> Vec<Problem> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    let Some(leaf) = chain.first() else {
        return vec![Problem::NoCertificate];
    };
    let mut out = Vec::new();
    match PrivateKeyDer::from_pem_slice(key_pem) {
        Err(e) => out.push(Problem::BadKey(e.to_string())),
        Ok(key) => match rustls::crypto::ring::sign::any_supported_type(&key) {
            Err(e) => out.push(Problem::BadKey(e.to_string())),
            Ok(signing) => {
                if key_matches(leaf, signing.as_ref()) == Some(false) {
                    out.push(Problem::KeyMismatch);
                }
            }
        },
    }
    if let (Some(now), Ok((_, parsed))) = (now_unix, x509_parser::parse_x509_certificate(leaf)) {
        let not_after = parsed.validity().not_after;
        if not_after.timestamp() < now {
            out.push(Problem::Expired(not_after.to_string()));
        }
    }
    out
}

/// Whether the certificate's public key is the key's; `None` when either cannot be read. Read
/// with x509-parser, which also takes X.509 v1 certificates (no extensions, as `openssl x509
/// -req` makes them without `-extfile`): Envoy serves those, and so do we.
pub fn key_matches(leaf: &CertificateDer<'_>, key: &dyn rustls::sign::SigningKey) -> Option<bool> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let public = key.public_key()?;
    Some(cert.tbs_certificate.subject_pki.raw == public.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/x509-v1");
        std::fs::read(format!("{dir}/{name}")).unwrap()
    }

    /// The secure-gateways task's certificate (X.509 v1) and its key belong together.
    #[test]
    fn an_x509_v1_certificate_and_its_key_are_a_pair() {
        let cert = testdata("httpbin.example.com.crt");
        let key = testdata("httpbin.example.com.key");
        assert_eq!(check_pair(&cert, &key, Some(0)), vec![]);
        let other_key = testdata("example.com.crt");
        assert!(check_pair(&other_key, &key, None).contains(&Problem::KeyMismatch));
    }
}

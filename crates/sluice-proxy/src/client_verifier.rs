//! Client certificates for MUTUAL and OPTIONAL_MUTUAL servers: webpki's verifier, except for
//! X.509 v1 leaf certificates (no extensions, as the `openssl x509 -req` of Istio's Secure
//! Gateways task makes them), which webpki refuses and Envoy accepts. Those are checked with
//! x509-parser: issued and signed by one of the server's CA certificates, valid now, and their
//! handshake signature verified against their key (TLS 1.3).
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use std::sync::Arc;
use x509_parser::prelude::*;

#[derive(Debug)]
pub struct ClientVerifier {
    pub webpki: Arc<dyn ClientCertVerifier>,
    pub roots: Vec<CertificateDer<'static>>,
    pub provider: Arc<CryptoProvider>,
}

fn is_v1(cert: &CertificateDer<'_>) -> bool {
    X509Certificate::from_der(cert.as_ref()).is_ok_and(|(_, c)| c.version() == X509Version::V1)
}

impl ClientVerifier {
    /// A v1 leaf signed directly by one of the roots and valid at `now`.
    fn verify_v1(&self, leaf: &CertificateDer<'_>, now: UnixTime) -> Result<(), Error> {
        let bad = |e: CertificateError| Error::InvalidCertificate(e);
        let (_, cert) = X509Certificate::from_der(leaf.as_ref())
            .map_err(|_| bad(CertificateError::BadEncoding))?;
        let at = ASN1Time::from_timestamp(now.as_secs() as i64)
            .map_err(|_| bad(CertificateError::BadEncoding))?;
        if !cert.validity().is_valid_at(at) {
            return Err(bad(CertificateError::Expired));
        }
        let signed_by_root = self.roots.iter().any(|root| {
            X509Certificate::from_der(root.as_ref()).is_ok_and(|(_, ca)| {
                ca.subject() == cert.issuer()
                    && cert.verify_signature(Some(ca.public_key())).is_ok()
            })
        });
        if signed_by_root {
            Ok(())
        } else {
            Err(bad(CertificateError::UnknownIssuer))
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.webpki.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.webpki.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if is_v1(end_entity) {
            self.verify_v1(end_entity, now)?;
            return Ok(ClientCertVerified::assertion());
        }
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if is_v1(cert) {
            // rustls checks TLS 1.2 signatures only through webpki's certificate parser.
            return Err(Error::General(
                "an X.509 v1 client certificate needs TLS 1.3".into(),
            ));
        }
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if !is_v1(cert) {
            return self.webpki.verify_tls13_signature(message, cert, dss);
        }
        let (_, parsed) = X509Certificate::from_der(cert.as_ref())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

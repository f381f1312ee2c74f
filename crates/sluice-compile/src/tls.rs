//! TLS servers of a Gateway port: which certificate and route table serve which SNI names,
//! with key material resolved from `credentialName` Secrets or left as file paths for the data
//! plane to read (compile does no I/O).
use sluice_api::istio::{
    ClientTlsMode, ClientTlsSettings, ServerTlsMode, ServerTlsSettings, TlsProtocol,
};
use sluice_config::store::Kind;
use sluice_config::Store;
use std::path::PathBuf;
use std::sync::Arc;

/// PEM data, inline (from a Secret) or in a file the data plane reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    Inline(Arc<[u8]>),
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// SIMPLE: no client certificate asked for.
    None,
    /// MUTUAL: a client certificate signed by the CA is required.
    Required,
    /// OPTIONAL_MUTUAL: verified when presented.
    Optional,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_chain: Pem,
    pub private_key: Pem,
    pub ca: Option<Pem>,
    pub client_auth: ClientAuth,
    /// TLS 1.2 unless set higher.
    pub min_tls13: bool,
    /// TLS 1.3 unless capped at 1.2.
    pub max_tls12: bool,
    /// Istio/OpenSSL cipher names; empty: the library's defaults.
    pub cipher_suites: Vec<String>,
    pub subject_alt_names: Vec<String>,
    pub verify_spki: Vec<String>,
    pub verify_hash: Vec<String>,
}

impl TlsSettings {
    /// SIMPLE TLS with this certificate and key and the library's defaults for the rest.
    pub fn simple(cert_chain: Pem, private_key: Pem) -> Self {
        TlsSettings {
            cert_chain,
            private_key,
            ca: None,
            client_auth: ClientAuth::None,
            min_tls13: false,
            max_tls12: false,
            cipher_suites: Vec::new(),
            subject_alt_names: Vec::new(),
            verify_spki: Vec::new(),
            verify_hash: Vec::new(),
        }
    }
}

/// One server of a TLS port (Envoy's filter chain): chosen by the ClientHello's SNI, it
/// terminates TLS (then HTTP or `tcp[]` routes) or passes the connection through by SNI.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// Istio's route-config name for HTTPS: `https.<port>.<port name>.<gateway>.<namespace>`;
    /// `tcp.…`/`tls.…` for the others.
    pub name: String,
    /// Lower-case SNI names this server answers: exact, `*.suffix`, or `*` for any (and none).
    pub sni: Vec<String>,
    pub mode: ServerMode,
}

#[derive(Debug, Clone)]
pub enum ServerMode {
    /// TLS terminated, then HTTP routed by `route_table`.
    Http {
        settings: Arc<TlsSettings>,
        route_table: String,
    },
    /// TLS terminated, then the bytes go by `tcp[]` routes.
    Tcp {
        settings: Arc<TlsSettings>,
        routes: Vec<crate::snapshot::L4Route>,
    },
    /// Not terminated: `tls[]` routes by SNI (PASSTHROUGH).
    Passthrough {
        routes: Vec<crate::snapshot::L4Route>,
    },
}

impl TlsServer {
    /// Whether the server covers `host` (without port).
    pub fn covers(&self, host: &str) -> bool {
        self.sni.iter().any(|s| crate::hosts::covers(s, host))
    }

    /// The certificate and handshake rules, for servers that terminate.
    pub fn settings(&self) -> Option<&Arc<TlsSettings>> {
        match &self.mode {
            ServerMode::Http { settings, .. } | ServerMode::Tcp { settings, .. } => Some(settings),
            ServerMode::Passthrough { .. } => None,
        }
    }

    /// The HTTP route table, for servers that terminate and route HTTP.
    pub fn route_table(&self) -> Option<&str> {
        match &self.mode {
            ServerMode::Http { route_table, .. } => Some(route_table),
            _ => None,
        }
    }
}

/// The server for a ClientHello's SNI: exact name, then the longest wildcard, then `*` (names
/// compared without regard to case). A client without SNI gets only a `*` server.
pub fn select_server<'a>(servers: &'a [TlsServer], sni: Option<&str>) -> Option<&'a TlsServer> {
    select_index(servers, sni).map(|i| &servers[i])
}

/// Position of the server `select_server` picks.
pub fn select_index(servers: &[TlsServer], sni: Option<&str>) -> Option<usize> {
    let any = || servers.iter().position(|s| s.sni.iter().any(|n| n == "*"));
    let Some(sni) = sni else {
        return any();
    };
    if let Some(i) = servers
        .iter()
        .position(|s| s.sni.iter().any(|n| n.eq_ignore_ascii_case(sni)))
    {
        return Some(i);
    }
    servers
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.sni.iter().map(move |n| (i, n)))
        .filter(|(_, n)| n.len() > 1 && n.starts_with('*') && crate::hosts::covers(n, sni))
        .map(|(i, n)| (n.len(), i))
        .max_by_key(|(len, _)| *len)
        .map(|(_, i)| i)
        .or_else(any)
}

/// TLS from the gateway to a backend (DestinationRule `tls`, SIMPLE or MUTUAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// Trusted roots; `None`: the public web roots.
    pub ca: Option<Pem>,
    /// MUTUAL: the gateway's client certificate and key.
    pub client_cert: Option<(Pem, Pem)>,
    /// SNI sent; `None`: the service's host name.
    pub sni: Option<String>,
    /// Names the backend's certificate must carry (any of them); empty: the SNI.
    pub subject_alt_names: Vec<String>,
    pub insecure_skip_verify: bool,
    /// ISTIO_MUTUAL: the chain is verified against the mesh root and `subject_alt_names` are
    /// SPIFFE URIs (none: any workload of the mesh), not DNS names.
    pub mesh: bool,
}

/// The mesh's workload certificates (`--mesh-cert-dir`), as Istio's agent writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshCerts {
    pub dir: PathBuf,
}

/// What ISTIO_MUTUAL needs to know about the destination.
pub struct MeshTarget<'a> {
    /// Istio's SNI: `outbound_.<port>_.<subset>_.<host>`.
    pub sni: String,
    /// The service's `subjectAltNames` (ServiceEntry), the identities it may present.
    pub identities: &'a [String],
}

/// A DestinationRule's client TLS settings as the data plane needs them; `Ok(None)` for
/// plaintext (DISABLE or no mode).
pub fn upstream_settings(
    tls: &ClientTlsSettings,
    store: &Store,
    gateway_namespace: &str,
    mesh: (Option<&MeshCerts>, MeshTarget),
) -> Result<Option<UpstreamTls>, TlsProblem> {
    let mutual = match tls.mode {
        None | Some(ClientTlsMode::Disable) => return Ok(None),
        Some(ClientTlsMode::Simple) => false,
        Some(ClientTlsMode::Mutual) => true,
        Some(ClientTlsMode::IstioMutual) => {
            let (Some(certs), target) = mesh else {
                return Err(TlsProblem::IstioMutual);
            };
            let file = |name: &str| Pem::File(certs.dir.join(name));
            return Ok(Some(UpstreamTls {
                ca: Some(file("root-cert.pem")),
                client_cert: Some((file("cert-chain.pem"), file("key.pem"))),
                sni: Some(tls.sni.clone().unwrap_or(target.sni)),
                subject_alt_names: if tls.subject_alt_names.is_empty() {
                    target.identities.to_vec()
                } else {
                    tls.subject_alt_names.clone()
                },
                insecure_skip_verify: false,
                mesh: true,
            }));
        }
    };
    let (secret_cert, ca_from_secret) = match &tls.credential_name {
        Some(name) => {
            let secret = store
                .get(Kind::Secret, gateway_namespace, name)
                .ok_or_else(|| TlsProblem::SecretNotFound(format!("{gateway_namespace}/{name}")))?;
            let body = secret.secret().expect("kind");
            let cert = secret_pair(body).map(|(c, k)| (Pem::Inline(c), Pem::Inline(k)));
            (
                cert,
                secret_ca(store, gateway_namespace, name).map(Pem::Inline),
            )
        }
        None => (None, None),
    };
    let file_cert = match (&tls.client_certificate, &tls.private_key) {
        (Some(c), Some(k)) => Some((Pem::File(c.into()), Pem::File(k.into()))),
        _ => None,
    };
    let client_cert = secret_cert.or(file_cert);
    if mutual && client_cert.is_none() {
        return Err(TlsProblem::NoCertificate);
    }
    Ok(Some(UpstreamTls {
        ca: ca_from_secret.or_else(|| tls.ca_certificates.as_ref().map(|c| Pem::File(c.into()))),
        client_cert: if mutual { client_cert } else { None },
        sni: tls.sni.clone().filter(|s| !s.is_empty()),
        subject_alt_names: tls.subject_alt_names.clone(),
        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
        mesh: false,
    }))
}

/// Istio's key names in a credential Secret, generic before `kubernetes.io/tls`: a certificate
/// and key as `cert`/`key`, else `tls.crt`/`tls.key`; a CA as `cacert`, else `ca.crt`.
pub const CERT_KEY_PAIRS: [(&str, &str); 2] = [("cert", "key"), ("tls.crt", "tls.key")];
pub const CA_KEYS: [&str; 2] = ["cacert", "ca.crt"];

/// PEM bytes read from a Secret.
pub type SecretBytes = Arc<[u8]>;

/// The certificate and key of a Secret, by `CERT_KEY_PAIRS`.
pub fn secret_pair(body: &sluice_api::core::SecretBody) -> Option<(SecretBytes, SecretBytes)> {
    CERT_KEY_PAIRS
        .iter()
        .find_map(|(c, k)| Some((secret_value(body, &[c])?, secret_value(body, &[k])?)))
}

/// The CA for credential `name`: the Secret `<name>-cacert` first, else the Secret itself.
pub fn secret_ca(store: &Store, ns: &str, name: &str) -> Option<Arc<[u8]>> {
    [format!("{name}-cacert"), name.to_string()]
        .iter()
        .find_map(|n| secret_value(store.get(Kind::Secret, ns, n)?.secret()?, &CA_KEYS))
}

/// The first of `keys` the Secret holds with a non-empty value (`stringData` wins, as the API server
/// merges it; `data` is base64).
pub fn secret_value(body: &sluice_api::core::SecretBody, keys: &[&str]) -> Option<Arc<[u8]>> {
    // An empty value counts as absent: Istio refuses such a Secret.
    keys.iter().find_map(|k| {
        if let Some(v) = body.string_data.get(*k) {
            return (!v.trim().is_empty()).then(|| v.as_bytes().into());
        }
        use base64::Engine;
        let raw = body.data.get(*k)?;
        base64::engine::general_purpose::STANDARD
            .decode(raw.split_whitespace().collect::<String>())
            .ok()
            .filter(|v| !v.is_empty())
            .map(Into::into)
    })
}

/// Why a server's TLS settings cannot be served (validation reports the same causes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    NoCertificate,
    SecretNotFound(String),
    SecretIncomplete(String),
    NotTerminating,
    /// ISTIO_MUTUAL needs the mesh's certificates, which a standalone gateway does not have.
    IstioMutual,
    /// The data plane could not use the material (unreadable file, bad PEM); why, in words.
    Unusable(String),
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsProblem::NoCertificate => f.write_str(
                "no certificate: set credentialName, or serverCertificate and privateKey",
            ),
            TlsProblem::SecretNotFound(s) => write!(f, "Secret {s} not found"),
            TlsProblem::SecretIncomplete(s) => {
                write!(
                    f,
                    "Secret {s} has no certificate and key (tls.crt and tls.key, or cert and key)"
                )
            }
            TlsProblem::NotTerminating => f.write_str("the TLS mode does not terminate TLS"),
            TlsProblem::IstioMutual => f.write_str(
                "ISTIO_MUTUAL needs the mesh's workload certificates (run with --mesh-cert-dir)",
            ),
            TlsProblem::Unusable(why) => f.write_str(why),
        }
    }
}

/// Resolves a terminating server's TLS settings against the Secrets of the gateway namespace.
pub fn settings(
    tls: &ServerTlsSettings,
    store: &Store,
    gateway_namespace: &str,
) -> Result<TlsSettings, TlsProblem> {
    let client_auth = match tls.mode {
        Some(ServerTlsMode::Simple) | None => ClientAuth::None,
        Some(ServerTlsMode::Mutual) => ClientAuth::Required,
        Some(ServerTlsMode::OptionalMutual) => ClientAuth::Optional,
        _ => return Err(TlsProblem::NotTerminating),
    };
    let (cert_chain, private_key, ca) = match (&tls.credential_name, &tls.server_certificate) {
        (Some(name), _) => from_secret(store, gateway_namespace, name)?,
        (None, Some(cert)) => (
            Pem::File(cert.into()),
            Pem::File(
                tls.private_key
                    .clone()
                    .ok_or(TlsProblem::NoCertificate)?
                    .into(),
            ),
            tls.ca_certificates.as_ref().map(|c| Pem::File(c.into())),
        ),
        (None, None) => return Err(TlsProblem::NoCertificate),
    };
    Ok(TlsSettings {
        cert_chain,
        private_key,
        ca,
        client_auth,
        min_tls13: tls.min_protocol_version == Some(TlsProtocol::V1_3),
        max_tls12: matches!(
            tls.max_protocol_version,
            Some(TlsProtocol::V1_2 | TlsProtocol::V1_1 | TlsProtocol::V1_0)
        ),
        cipher_suites: tls.cipher_suites.clone(),
        subject_alt_names: tls.subject_alt_names.clone(),
        verify_spki: tls.verify_certificate_spki.clone(),
        verify_hash: tls.verify_certificate_hash.clone(),
    })
}

/// `tls.crt`/`tls.key`/`ca.crt` (or `cert`/`key`/`cacert`), the CA possibly in `<name>-cacert`.
pub(crate) fn from_secret(
    store: &Store,
    ns: &str,
    name: &str,
) -> Result<(Pem, Pem, Option<Pem>), TlsProblem> {
    let secret = store
        .get(Kind::Secret, ns, name)
        .ok_or_else(|| TlsProblem::SecretNotFound(format!("{ns}/{name}")))?;
    let (cert, key) = secret_pair(secret.secret().expect("kind"))
        .ok_or_else(|| TlsProblem::SecretIncomplete(format!("{ns}/{name}")))?;
    let ca = secret_ca(store, ns, name);
    Ok((Pem::Inline(cert), Pem::Inline(key), ca.map(Pem::Inline)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, sni: &[&str]) -> TlsServer {
        TlsServer {
            name: name.into(),
            sni: sni.iter().map(|s| s.to_string()).collect(),
            mode: ServerMode::Http {
                settings: Arc::new(TlsSettings {
                    cert_chain: Pem::File("c".into()),
                    private_key: Pem::File("k".into()),
                    ca: None,
                    client_auth: ClientAuth::None,
                    min_tls13: false,
                    max_tls12: false,
                    cipher_suites: vec![],
                    subject_alt_names: vec![],
                    verify_spki: vec![],
                    verify_hash: vec![],
                }),
                route_table: name.into(),
            },
        }
    }

    #[test]
    fn sni_selection_exact_then_longest_wildcard_then_any() {
        let servers = [
            server("any", &["*"]),
            server("wild", &["*.example.com"]),
            server("deeper", &["*.api.example.com"]),
            server("exact", &["shop.example.com"]),
        ];
        let pick = |sni: Option<&str>| select_server(&servers, sni).map(|s| s.name.as_str());
        assert_eq!(pick(Some("shop.example.com")), Some("exact"));
        assert_eq!(pick(Some("Shop.Example.com")), Some("exact"));
        assert_eq!(pick(Some("a.example.com")), Some("wild"));
        assert_eq!(pick(Some("v1.api.example.com")), Some("deeper"));
        assert_eq!(pick(Some("other.org")), Some("any"));
        assert_eq!(pick(None), Some("any"));
        assert_eq!(
            select_server(&servers[1..], None).map(|s| s.name.as_str()),
            None
        );
        assert_eq!(
            select_server(&servers[1..], Some("x.org")).map(|s| s.name.as_str()),
            None
        );
    }
}

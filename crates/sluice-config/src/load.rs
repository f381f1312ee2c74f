//! Reading files and directories into objects. Nothing here stops at the first problem: every
//! document that can be understood is kept, and every problem becomes a diagnostic with a place.
use crate::de::{from_node, from_node_recording, suggestion, DeError, FieldSeen};
use crate::diag::{codes, Diagnostic, Origin, Severity};
use crate::store::{Body, Kind, Object};
use crate::yaml::{self, Node, Seg, Value};
use serde::de::DeserializeOwned;
use sluice_api::ObjectMeta;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What loading produced: the objects, the problems, and the texts (to render diagnostics).
#[derive(Debug, Default)]
pub struct Loaded {
    pub objects: Vec<Object>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: HashMap<Arc<str>, Arc<str>>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const ISTIO_GROUP: &str = "networking.istio.io";
const ISTIO_VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1alpha3"];
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
const INGRESS_GROUP: &str = "networking.k8s.io";

enum KindClass {
    Served(Kind),
    /// Istio or Gateway API kinds a user expects to matter: ignoring them silently would hide a
    /// behaviour difference.
    Unsupported(&'static str),
    Unserved,
}

fn classify(api_version: &str, kind: &str) -> Result<KindClass, String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let served = match kind {
        "Gateway" if group == ISTIO_GROUP => Some(Kind::Gateway),
        "VirtualService" => Some(Kind::VirtualService),
        "DestinationRule" => Some(Kind::DestinationRule),
        "ServiceEntry" => Some(Kind::ServiceEntry),
        "WorkloadEntry" => Some(Kind::WorkloadEntry),
        "Secret" if group.is_empty() => Some(Kind::Secret),
        "Service" if group.is_empty() => Some(Kind::Service),
        "EndpointSlice" => Some(Kind::EndpointSlice),
        "Namespace" if group.is_empty() => Some(Kind::Namespace),
        "Pod" if group.is_empty() => Some(Kind::Pod),
        "GatewayClass" if group == GATEWAY_API_GROUP => Some(Kind::GatewayClass),
        "Gateway" if group == GATEWAY_API_GROUP => Some(Kind::KubeGateway),
        "HTTPRoute" if group == GATEWAY_API_GROUP => Some(Kind::HttpRoute),
        "TLSRoute" if group == GATEWAY_API_GROUP => Some(Kind::TlsRoute),
        "TCPRoute" if group == GATEWAY_API_GROUP => Some(Kind::TcpRoute),
        "ReferenceGrant" if group == GATEWAY_API_GROUP => Some(Kind::ReferenceGrant),
        "GRPCRoute" if group == GATEWAY_API_GROUP => Some(Kind::GrpcRoute),
        "BackendTLSPolicy" if group == GATEWAY_API_GROUP => Some(Kind::BackendTlsPolicy),
        "ListenerSet" if group == GATEWAY_API_GROUP => Some(Kind::ListenerSet),
        "ConfigMap" if group.is_empty() => Some(Kind::ConfigMap),
        "Ingress" if group == INGRESS_GROUP => Some(Kind::Ingress),
        "IngressClass" if group == INGRESS_GROUP => Some(Kind::IngressClass),
        _ => None,
    };
    if let Some(k) = served {
        let ok = match k {
            Kind::Secret | Kind::Service | Kind::Namespace | Kind::ConfigMap | Kind::Pod => {
                api_version == "v1"
            }
            Kind::EndpointSlice => api_version == "discovery.k8s.io/v1",
            Kind::Ingress | Kind::IngressClass => api_version == "networking.k8s.io/v1",
            Kind::GatewayClass
            | Kind::KubeGateway
            | Kind::HttpRoute
            | Kind::TlsRoute
            | Kind::TcpRoute
            | Kind::ReferenceGrant
            | Kind::GrpcRoute
            | Kind::BackendTlsPolicy
            | Kind::ListenerSet => sluice_api::gateway_api::SERVED_VERSIONS
                .iter()
                .find(|(k, _, _)| *k == kind)
                .is_some_and(|(_, standard, experimental)| {
                    standard.contains(&version) || experimental.contains(&version)
                }),
            _ => group == ISTIO_GROUP && ISTIO_VERSIONS.contains(&version),
        };
        return if ok {
            Ok(KindClass::Served(k))
        } else {
            Err(k.api_version().to_string())
        };
    }
    Ok(match group {
        g if g.ends_with(".istio.io") => {
            KindClass::Unsupported("an Istio kind sluice does not implement")
        }
        GATEWAY_API_GROUP => KindClass::Unsupported(
            "served Gateway API kinds are GatewayClass, Gateway, ListenerSet, HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, ReferenceGrant and BackendTLSPolicy; this one is not served by this version of sluice yet",
        ),
        _ => KindClass::Unserved,
    })
}

/// The apiVersion a pasted object without one most likely meant.
fn guess_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Gateway" | "VirtualService" | "DestinationRule" | "ServiceEntry" | "WorkloadEntry"
        | "Sidecar" => "networking.istio.io/v1",
        "Secret" | "Service" | "Pod" | "ConfigMap" | "Namespace" => "v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Ingress" | "IngressClass" => "networking.k8s.io/v1",
        "HTTPRoute" | "GRPCRoute" => "gateway.networking.k8s.io/v1",
        _ => return None,
    })
}

/// Where an object was defined, its index in `out.objects` and the range of its own diagnostics
/// in `out.diagnostics`.
struct Defined {
    origin: Origin,
    index: usize,
    own: Range<usize>,
}

/// Collects objects from files; call `add_*` for each source, then `finish`.
#[derive(Default)]
pub struct Loader {
    out: Loaded,
    seen: HashMap<(Kind, String, String), Defined>,
    /// Diagnostics of definitions a later one replaced: that copy is never used.
    replaced: Vec<Range<usize>>,
    seq: usize,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file, or a directory read recursively (`.yaml`, `.yml`, `.json`; hidden entries such as
    /// a ConfigMap mount's `..data` are skipped so nothing is read twice).
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            for file in config_files(path)? {
                self.add_file(&file);
            }
        } else {
            self.add_file(path);
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) {
        let name: Arc<str> = path.display().to_string().into();
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => self.add_text(name, &text),
                Err(_) => self.file_error(name, "the file is not UTF-8 text"),
            },
            Err(e) => self.file_error(name, &format!("cannot read the file: {e}")),
        }
    }

    fn file_error(&mut self, file: Arc<str>, msg: &str) {
        self.out
            .diagnostics
            .push(
                Diagnostic::new(Severity::Error, codes::UNREADABLE, msg).at(Origin {
                    file,
                    line: 1,
                    column: 1,
                    end_line: 1,
                    end_column: 1,
                }),
            );
    }

    /// A text as if read from a file called `name` (used for embedded configuration).
    pub fn add_text(&mut self, name: Arc<str>, text: &str) {
        self.out.sources.insert(name.clone(), text.into());
        let (docs, errors) = yaml::parse(text);
        for doc in docs {
            self.add_document(&name, doc.root);
        }
        for e in errors {
            self.out.diagnostics.push(
                Diagnostic::new(Severity::Error, codes::YAML_SYNTAX, format!("invalid YAML: {}", e.message))
                    .at(Origin {
                        file: name.clone(),
                        line: e.pos.line,
                        column: e.pos.col,
                        end_line: e.pos.line,
                        end_column: e.pos.col + 1,
                    })
                    .help("YAML indents with spaces only; check the indentation of this line against its parent"),
            );
        }
    }

    pub fn finish(mut self) -> Loaded {
        if !self.replaced.is_empty() {
            let mut i = 0;
            let replaced = &self.replaced;
            self.out.diagnostics.retain(|_| {
                i += 1;
                !replaced.iter().any(|r| r.contains(&(i - 1)))
            });
        }
        self.out
    }

    fn origin(file: &Arc<str>, node: &Node) -> Origin {
        Origin {
            file: file.clone(),
            line: node.start.line,
            column: node.start.col,
            end_line: node.end.line,
            end_column: node.end.col,
        }
    }

    fn add_document(&mut self, file: &Arc<str>, root: Node) {
        if root.is_null() {
            return; // an empty document, e.g. a trailing `---`
        }
        if !matches!(root.value, Value::Map(_)) {
            self.out.diagnostics.push(
                Diagnostic::new(Severity::Error, codes::NOT_AN_OBJECT, "this document is not a Kubernetes object (a mapping with apiVersion, kind and metadata)")
                    .at(Self::origin(file, &root)),
            );
            return;
        }
        let kind_text = root.get("kind").and_then(Node::as_str).map(str::to_string);
        let Some(kind_text) = kind_text else {
            self.out.diagnostics.push(
                Diagnostic::new(Severity::Error, codes::NOT_AN_OBJECT, "object has no kind")
                    .at(Self::origin(file, &root))
                    .help("add `kind:` (for example `kind: VirtualService`) and `apiVersion:`"),
            );
            return;
        };
        if kind_text == "List" {
            if let Some(Node {
                value: Value::Seq(items),
                ..
            }) = root.get("items")
            {
                for item in items.clone() {
                    self.add_document(file, item);
                }
            }
            return;
        }
        let api_version = match root.get("apiVersion").and_then(Node::as_str) {
            Some(v) => v.to_string(),
            None => {
                let guess = guess_api_version(&kind_text);
                let mut d = Diagnostic::new(
                    Severity::Error,
                    codes::MISSING_API_VERSION,
                    format!("{kind_text} has no apiVersion"),
                )
                .at(Self::origin(file, &root));
                if let Some(g) = guess {
                    d = d.help(format!("add `apiVersion: {g}` above `kind: {kind_text}`"));
                }
                self.out.diagnostics.push(d);
                // Read it as the kind it evidently is, so its other problems are reported too.
                match guess {
                    Some(g) => g.to_string(),
                    None => return,
                }
            }
        };
        let kind = match classify(&api_version, &kind_text) {
            Ok(KindClass::Served(k)) => k,
            Ok(KindClass::Unsupported(why)) => {
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Warning,
                        codes::UNSUPPORTED_KIND,
                        format!("{kind_text} ({api_version}) is ignored: {why}"),
                    )
                    .at(Self::origin(file, &root)),
                );
                return;
            }
            Ok(KindClass::Unserved) => {
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Info,
                        codes::UNSERVED_KIND,
                        format!("{kind_text} ({api_version}) is not used by a gateway; skipped"),
                    )
                    .at(Self::origin(file, &root)),
                );
                return;
            }
            Err(right) => {
                let at = root.get("apiVersion").unwrap_or(&root);
                self.out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Error,
                        codes::UNKNOWN_API_VERSION,
                        format!("apiVersion \"{api_version}\" does not serve kind {kind_text}"),
                    )
                    .at(Self::origin(file, at))
                    .help(format!("use `apiVersion: {right}`")),
                );
                return;
            }
        };
        self.add_object(file, kind, root);
    }

    fn add_object(&mut self, file: &Arc<str>, kind: Kind, root: Node) {
        let mut diags = Vec::new();
        let top_fields: &[&str] = match kind {
            Kind::Secret => &[
                "apiVersion",
                "kind",
                "metadata",
                "data",
                "stringData",
                "type",
                "immutable",
            ],
            Kind::ConfigMap => &[
                "apiVersion",
                "kind",
                "metadata",
                "data",
                "binaryData",
                "immutable",
            ],
            Kind::EndpointSlice => &[
                "apiVersion",
                "kind",
                "metadata",
                "addressType",
                "endpoints",
                "ports",
            ],
            _ => &["apiVersion", "kind", "metadata", "spec", "status"],
        };
        if let Value::Map(entries) = &root.value {
            for (k, _) in entries {
                let name = k.as_str().unwrap_or("");
                if !top_fields.contains(&name) {
                    diags.push(schema_error(
                        file,
                        k,
                        format!("unknown field \"{name}\""),
                        Some(suggestion(name, top_fields)),
                        name,
                    ));
                }
            }
        }
        let meta: ObjectMeta = decode(
            root.get("metadata"),
            &[Seg::Key("metadata".into())],
            file,
            &mut diags,
        );
        let Some(name) = meta.name.clone().filter(|n| !n.is_empty()) else {
            self.out.diagnostics.extend(diags);
            self.out.diagnostics.push(
                Diagnostic::new(
                    Severity::Error,
                    codes::NOT_AN_OBJECT,
                    format!("{kind} has no metadata.name"),
                )
                .at(Self::origin(file, &root))
                .help("add `metadata: {name: ..., namespace: ...}`"),
            );
            return;
        };
        // As `kubectl apply` would: no namespace means `default`.
        let namespace = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let spec = root.get("spec");
        let spec_path = [Seg::Key("spec".into())];
        // Istio specs: every field they set is checked against the support table.
        let mut fields = Vec::new();
        let mut f = Some(&mut fields);
        let body = match kind {
            Kind::Gateway => Body::Gateway(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::VirtualService => Body::VirtualService(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::DestinationRule => Body::DestinationRule(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::ServiceEntry => Body::ServiceEntry(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::WorkloadEntry => Body::WorkloadEntry(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::Service => Body::Service(decode(spec, &spec_path, file, &mut diags)),
            Kind::Namespace => Body::Namespace,
            Kind::Pod => Body::Pod,
            Kind::GatewayClass => Body::GatewayClass(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::KubeGateway => Body::KubeGateway(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::HttpRoute => Body::HttpRoute(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::TlsRoute => Body::TlsRoute(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::TcpRoute => Body::TcpRoute(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::ReferenceGrant => Body::ReferenceGrant(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::GrpcRoute => Body::GrpcRoute(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::BackendTlsPolicy => Body::BackendTlsPolicy(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::ListenerSet => Body::ListenerSet(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::Ingress => Body::Ingress(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::IngressClass => Body::IngressClass(decode_recording(
                spec,
                &spec_path,
                file,
                &mut diags,
                f.take(),
            )),
            Kind::ConfigMap => {
                Body::ConfigMap(decode(Some(&without_header(&root)), &[], file, &mut diags))
            }
            Kind::Secret => {
                Body::Secret(decode(Some(&without_header(&root)), &[], file, &mut diags))
            }
            Kind::EndpointSlice => {
                Body::EndpointSlice(decode(Some(&without_header(&root)), &[], file, &mut diags))
            }
        };
        crate::support::field_diagnostics(file, &fields, &mut diags);
        let object = Object {
            kind,
            name,
            namespace,
            meta,
            body,
            file: file.clone(),
            node: Arc::new(root),
            seq: self.seq,
        };
        self.seq += 1;
        let resource = object.resource();
        let first = self.out.diagnostics.len();
        for mut d in diags {
            d.resource = Some(resource.clone());
            self.out.diagnostics.push(d);
        }
        let own = first..self.out.diagnostics.len();
        let key = (kind, object.namespace.clone(), object.name.clone());
        let origin = object.origin();
        if let Some(earlier) = self.seen.get_mut(&key) {
            // As `kubectl apply` of the files in order: the later definition replaces the
            // earlier one, which keeps its place (the object was created then).
            self.out.diagnostics.push(Diagnostic {
                resource: Some(resource),
                ..Diagnostic::new(
                    Severity::Warning,
                    codes::DUPLICATE_OBJECT,
                    format!(
                        "{kind} {}/{} is defined again here ({origin}); this definition replaces the one at {}, which is not checked further",
                        object.namespace, object.name, earlier.origin
                    ),
                )
                .at(origin.clone())
                .help("delete one of the two definitions, or rename one if both are meant to exist")
            });
            let replaced = &mut self.out.objects[earlier.index];
            let seq = replaced.seq;
            *replaced = Object { seq, ..object };
            earlier.origin = origin;
            self.replaced.push(std::mem::replace(&mut earlier.own, own));
            return;
        }
        let index = self.out.objects.len();
        self.seen.insert(key, Defined { origin, index, own });
        self.out.objects.push(object);
    }
}

/// The object's mapping without apiVersion/kind/metadata, for kinds whose fields sit at the top.
fn without_header(root: &Node) -> Node {
    let mut n = root.clone();
    if let Value::Map(entries) = &mut n.value {
        entries.retain(|(k, _)| !matches!(k.as_str(), Some("apiVersion" | "kind" | "metadata")));
    }
    n
}

fn schema_error(
    file: &Arc<str>,
    node: &Node,
    message: String,
    help: Option<String>,
    field: &str,
) -> Diagnostic {
    Diagnostic {
        help,
        field: Some(field.to_string()),
        ..Diagnostic::new(Severity::Error, codes::SCHEMA_VALIDATION_ERROR, message)
            .at(Loader::origin(file, node))
    }
}

fn decode<T: DeserializeOwned + Default>(
    node: Option<&Node>,
    base: &[Seg],
    file: &Arc<str>,
    diags: &mut Vec<Diagnostic>,
) -> T {
    decode_recording(node, base, file, diags, None)
}

/// Deserializes `node` (absent = empty), reporting every schema error: after each one the
/// offending field is removed and decoding retried, so one typo does not hide the next. With
/// `seen`, the fields of the decode that succeeded are listed there.
fn decode_recording<T: DeserializeOwned + Default>(
    node: Option<&Node>,
    base: &[Seg],
    file: &Arc<str>,
    diags: &mut Vec<Diagnostic>,
    mut seen: Option<&mut Vec<FieldSeen>>,
) -> T {
    let Some(node) = node else {
        return T::default();
    };
    let mut owned: Option<Node> = None;
    for _ in 0..100 {
        let current = owned.as_ref().unwrap_or(node);
        let mut fields = Vec::new();
        let decoded = match seen {
            Some(_) => from_node_recording::<T>(current, base, &mut fields),
            None => from_node::<T>(current, base),
        };
        match decoded {
            Ok(v) => {
                if let Some(seen) = seen.as_mut() {
                    seen.append(&mut fields);
                }
                return v;
            }
            Err(e) => {
                diags.push(de_diagnostic(file, &e));
                let relative = e.path.get(base.len()..).unwrap_or(&[]);
                let mut next = current.clone();
                if relative.is_empty() || !next.remove(relative) {
                    return T::default();
                }
                owned = Some(next);
            }
        }
    }
    T::default()
}

fn de_diagnostic(file: &Arc<str>, e: &DeError) -> Diagnostic {
    let (start, end) = e.at.unwrap_or_default();
    Diagnostic {
        help: e.help.clone(),
        field: Some(yaml::path_to_string(&e.path)),
        ..Diagnostic::new(
            Severity::Error,
            codes::SCHEMA_VALIDATION_ERROR,
            format!("{}: {}", yaml::path_to_string(&e.path), e.message),
        )
        .at(Origin {
            file: file.clone(),
            line: start.line,
            column: start.col,
            end_line: end.line,
            end_column: end.col,
        })
    }
}

fn config_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| LoadError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Loads every path (files or directories) into one set of objects.
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Loaded, LoadError> {
    let mut loader = Loader::new();
    for p in paths {
        loader.add_path(p.as_ref())?;
    }
    Ok(loader.finish())
}

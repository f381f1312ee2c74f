//! `sluice convert`: Kubernetes Ingress and Istio objects written as the Kubernetes Gateway API,
//! and `check`, which compiles both and compares what each does with the same requests.
//!
//! Conversion is pure (a `Store` in, objects and warnings out). Whatever the Gateway API cannot
//! express is never dropped silently: it becomes a warning at the source field and a comment
//! beside the object that lost it.
#![forbid(unsafe_code)]

pub mod check;
mod emit;
mod error;
pub mod ingress;
mod istio;
mod names;
mod notes;
mod output;
mod paths;
mod refs;

pub use emit::{json, yaml, yaml_value};
pub use error::ConvertError;
pub use output::Output;

use sluice_compile::GatewayIdentity;
use sluice_config::{Diagnostic, Kind, Store};

/// The annotation on a generated Service naming the destination it stands for:
/// `<host>|<subset>` (the subset empty for a ServiceEntry host).
pub const SOURCE_ANNOTATION: &str = "convert.sluice.dev/source";

/// The API the objects are converted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Ingress,
    Istio,
}

impl From {
    /// The kinds a conversion replaces (everything else is carried over unchanged).
    pub fn replaced_kinds(self) -> &'static [Kind] {
        match self {
            From::Ingress => &[Kind::Ingress, Kind::IngressClass],
            From::Istio => &[Kind::Gateway, Kind::VirtualService],
        }
    }
}

/// What a conversion needs to know about the gateway the objects were written for.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: From,
    /// The gateway's namespace (where Istio reads `credentialName` and Ingress `secretName`
    /// Secrets) and the domain suffix of service names.
    pub identity: GatewayIdentity,
    /// `gatewayClassName` of the Gateways converted from Istio Gateways.
    pub gateway_class: String,
}

impl Options {
    pub fn new(from: From) -> Options {
        Options {
            from,
            identity: GatewayIdentity::default(),
            gateway_class: "istio".into(),
        }
    }
}

/// The converted objects, in the order they are written, and what could not be carried over.
#[derive(Debug, Default)]
pub struct Conversion {
    pub objects: Vec<Output>,
    pub warnings: Vec<Diagnostic>,
}

/// Converts the objects of `opts.from` in `store` to the Gateway API.
pub fn convert(store: &Store, opts: &Options) -> Result<Conversion, ConvertError> {
    if !opts
        .from
        .replaced_kinds()
        .iter()
        .any(|k| store.of_kind(*k).next().is_some())
    {
        return Err(ConvertError::NothingToConvert {
            what: match opts.from {
                From::Ingress => "Ingress",
                From::Istio => "Istio Gateway or VirtualService",
            },
        });
    }
    let mut conversion = match opts.from {
        From::Ingress => ingress::convert(store, opts),
        From::Istio => istio::convert(store, opts),
    };
    conversion.warnings.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.origin
                .as_ref()
                .map(|o| (o.file.clone(), o.line, o.column))
        };
        key(a).cmp(&key(b))
    });
    Ok(conversion)
}

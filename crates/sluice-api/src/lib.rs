//! Typed objects sluice reads, spelled exactly as their APIs spell them (camelCase fields,
//! enum values as Istio and the Gateway API write them). Every field is optional, as in protobuf: which fields are
//! required is a validation rule, so it can be reported with a location and a fix.
#![forbid(unsafe_code)]

pub mod core;
mod duration;
pub mod gateway_api;
pub mod ingress;
pub mod istio;
pub mod meta;

pub use duration::{Duration, DurationError};
pub use meta::ObjectMeta;

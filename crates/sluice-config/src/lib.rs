//! Loading configuration: YAML/JSON files into typed objects that remember their origin, the
//! ResourceStore that holds them in Istio's order, and Istio's per-object validation rules.
#![forbid(unsafe_code)]

pub mod de;
pub mod diag;
pub mod load;
pub mod store;
pub mod support;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Origin, ResourceRef, Severity};
pub use load::{load_paths, LoadError, Loaded, Loader};
pub use store::{Body, Kind, Object, Store};

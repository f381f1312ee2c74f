//! From objects to behaviour: the pure compile of a store into a routing snapshot, and the
//! cross-object analysis `validate` reports. No I/O and no clocks here.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod binding;
pub mod hosts;
pub mod registry;

pub use analyze::{analyze, AnalyzeOptions};

use sluice_config::{Diagnostic, Loaded, Store};

/// Everything `validate` says about a loaded configuration: load and schema problems, each
/// object's own rules, then the cross-object analysis; sorted by file and line.
pub fn check(loaded: &Loaded, opts: &AnalyzeOptions) -> (Store, Vec<Diagnostic>) {
    let mut diags = loaded.diagnostics.clone();
    for o in &loaded.objects {
        sluice_config::validate::validate_object(o, &mut diags);
    }
    let store = Store::new(loaded.objects.clone());
    diags.extend(analyze(&store, opts));
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.origin
                .as_ref()
                .map(|o| (o.file.clone(), o.line, o.column))
        };
        key(a).cmp(&key(b))
    });
    diags.dedup();
    (store, diags)
}

pub mod compile;
pub mod explain;
pub mod select;
pub mod snapshot;

pub use compile::{compile, GatewayIdentity};
pub use select::{select_route, HeaderLookup, RequestView, RouteDecision};
pub use snapshot::Snapshot;

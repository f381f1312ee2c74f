//! From objects to behaviour: the pure compile of a store into a routing snapshot, and the
//! cross-object analysis `validate` reports. No I/O and no clocks here.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod backend_tls;
pub mod binding;
pub mod hosts;
pub mod instance;
pub mod registry;

pub use analyze::{analyze, AnalyzeOptions};

use sluice_config::{Diagnostic, Loaded, Store};

/// A map read on every request and keyed by configuration (hosts, ports, cluster names): a fast
/// hash instead of SipHash. Clients only look keys up, so they cannot grow its buckets.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Everything `validate` says about a loaded configuration: load and schema problems, each
/// object's own rules, then the cross-object analysis; sorted by file and line.
pub fn check(loaded: &Loaded, opts: &AnalyzeOptions) -> (Store, Vec<Diagnostic>) {
    let mut diags = admission(loaded);
    let store = Store::new(loaded.objects.clone());
    diags.extend(analyze(&store, opts));
    sort(&mut diags);
    (store, diags)
}

/// What a serving gateway does with a configuration: refuse it (`None`) when loading or an
/// object's own rules found errors — what Istio's admission webhook would reject — or take it.
/// Cross-object findings (a missing subset, an unknown host) never refuse: Istio serves such a
/// configuration (those routes answer 503), and objects arrive in any order, so sluice serves
/// it too and reports them. The diagnostics are all there is to say either way.
pub fn admit(loaded: &Loaded, opts: &AnalyzeOptions) -> (Option<Store>, Vec<Diagnostic>) {
    let mut diags = admission(loaded);
    if diags.iter().any(Diagnostic::is_error) {
        sort(&mut diags);
        return (None, diags);
    }
    let store = Store::new(loaded.objects.clone());
    diags.extend(analyze(&store, opts));
    sort(&mut diags);
    (Some(store), diags)
}

fn admission(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut diags = loaded.diagnostics.clone();
    for o in &loaded.objects {
        sluice_config::validate::validate_object(o, &mut diags);
    }
    diags
}

fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.origin
                .as_ref()
                .map(|o| (o.file.clone(), o.line, o.column))
        };
        key(a).cmp(&key(b))
    });
    diags.dedup();
}

pub mod compile;
pub mod delegate;
pub mod destination_rules;
pub mod dump;
pub mod explain;
pub mod gateway_status;
pub mod pem_check;
pub mod policy;
pub mod select;
pub mod snapshot;
pub mod tls;
pub mod visibility;

pub use compile::{compile, GatewayIdentity};
pub use select::{select_route, HeaderLookup, RequestView, RouteDecision};
pub use snapshot::Snapshot;

//! `convert --check`: compile the original objects and the converted ones (with the same
//! Services, EndpointSlices, Secrets and everything else the conversion does not replace) and
//! ask `explain` about the same requests on both. Any request answered differently is a
//! difference, printed like a failed test.
mod compare;
mod requests;

pub use requests::Probe;

use crate::{ConvertError, Options};
use sluice_compile::explain::{explain, Request};
use sluice_compile::Snapshot;
use sluice_config::{Loaded, Loader, Object, Store};
use std::collections::HashSet;

/// One request answered differently.
#[derive(Debug)]
pub struct Difference {
    pub probe: Probe,
    pub original: String,
    pub original_route: String,
    pub converted: String,
    pub converted_route: String,
}

#[derive(Debug)]
pub struct Report {
    /// Every request asked.
    pub probes: Vec<Probe>,
    pub differences: Vec<Difference>,
}

impl Report {
    /// The differences as a test failure reads, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            out.push_str(&format!(
                "difference: {}\n  original:  {}\n             by {}\n  converted: {}\n             by {}\n\n",
                d.probe, d.original, d.original_route, d.converted, d.converted_route
            ));
        }
        out.push_str(&format!(
            "check {}: {} request(s) compared, {} difference(s)\n",
            if self.differences.is_empty() {
                "passed"
            } else {
                "FAILED"
            },
            self.probes.len(),
            self.differences.len()
        ));
        out
    }
}

/// The errors among `diags`, one line each with its place.
fn error_lines(diags: &[sluice_config::Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let at = d.origin.as_ref().map(|o| o.to_string()).unwrap_or_default();
            format!("  {at}: {}", d.message)
        })
        .collect()
}

/// The objects of the converted configuration: the original ones the conversion does not
/// replace, and the converted ones (read back from `converted_yaml`, the text printed).
fn converted_objects(
    original: &Loaded,
    converted_yaml: &str,
    opts: &Options,
) -> Result<Loaded, ConvertError> {
    let mut loader = Loader::new();
    loader.add_text("converted.yaml".into(), converted_yaml);
    let mut converted = loader.finish();
    let errors = error_lines(&converted.diagnostics);
    if !errors.is_empty() {
        return Err(ConvertError::InvalidOutput {
            count: errors.len(),
            details: errors.join("\n"),
        });
    }
    let replaced = opts.from.replaced_kinds();
    let new: HashSet<(sluice_config::Kind, String, String)> = converted
        .objects
        .iter()
        .map(|o| (o.kind, o.namespace.clone(), o.name.clone()))
        .collect();
    let offset = original.objects.len();
    for o in &mut converted.objects {
        o.seq += offset;
    }
    let kept: Vec<Object> = original
        .objects
        .iter()
        .filter(|o| {
            !replaced.contains(&o.kind)
                && !new.contains(&(o.kind, o.namespace.clone(), o.name.clone()))
        })
        .cloned()
        .collect();
    converted.objects.splice(0..0, kept);
    converted
        .sources
        .extend(original.sources.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(converted)
}

/// The generated Services' hosts and the destinations they stand for (their `SOURCE`
/// annotation), so an empty subset and its Service read alike.
fn aliases(converted: &Loaded, opts: &Options) -> compare::Aliases {
    converted
        .objects
        .iter()
        .filter(|o| o.kind == sluice_config::Kind::Service)
        .filter_map(|o| {
            let (host, subset) = o
                .meta
                .annotations
                .get(crate::SOURCE_ANNOTATION)?
                .split_once('|')?;
            let fqdn = sluice_compile::hosts::service_fqdn(
                &o.name,
                &o.namespace,
                &opts.identity.domain_suffix,
            );
            Some((fqdn, (host.to_string(), subset.to_string())))
        })
        .collect()
}

/// The identity the converted configuration is compiled with: the original's, and for Ingress
/// the GatewayClasses named after the classes it serves (which the user creates).
fn converted_identity(original: &Loaded, opts: &Options) -> sluice_compile::GatewayIdentity {
    let mut id = opts.identity.clone();
    if opts.from == crate::From::Ingress {
        let store = Store::new(original.objects.clone());
        for ingress in
            sluice_compile::compile::ingress::served_ingresses(&store, &id.ingress_classes)
        {
            if let Some(class) = crate::ingress::class_of(&store, ingress) {
                if !id.gateway_classes.contains(&class) {
                    id.gateway_classes.push(class);
                }
            }
        }
    }
    id
}

fn compile(
    loaded: &Loaded,
    opts: &Options,
    id: &sluice_compile::GatewayIdentity,
) -> Result<Snapshot, Vec<String>> {
    let analyze = sluice_compile::AnalyzeOptions {
        domain_suffix: opts.identity.domain_suffix.clone(),
        gateway_namespace: opts.identity.namespace.clone(),
        ingress_classes: opts.identity.ingress_classes.clone(),
        ..Default::default()
    };
    let (store, diags) = sluice_compile::admit(loaded, &analyze);
    let Some(store): Option<Store> = store else {
        return Err(error_lines(&diags));
    };
    Ok(sluice_compile::compile(&store, id).0)
}

/// Compiles both configurations and compares their answers.
pub fn check(
    original: &Loaded,
    converted_yaml: &str,
    opts: &Options,
) -> Result<Report, ConvertError> {
    let before = compile(original, opts, &opts.identity)
        .map_err(|e| ConvertError::InvalidInput { count: e.len() })?;
    let converted = converted_objects(original, converted_yaml, opts)?;
    let after = compile(&converted, opts, &converted_identity(original, opts)).map_err(|e| {
        ConvertError::InvalidOutput {
            count: e.len(),
            details: e.join("\n"),
        }
    })?;
    let aliases = aliases(&converted, opts);
    let probes = requests::probes([&before, &after]);
    let mut differences = Vec::new();
    for p in &probes {
        let req = Request {
            port: p.port,
            host: p.host.as_deref(),
            sni: p.sni.as_deref(),
            path: &p.path,
            method: &p.method,
            headers: &p.headers,
        };
        let (a, b) = (explain(&before, &req), explain(&after, &req));
        let (oa, ob) = (
            compare::outcome(&a, &aliases),
            compare::outcome(&b, &aliases),
        );
        if oa != ob {
            differences.push(Difference {
                probe: p.clone(),
                original: oa,
                original_route: compare::route_name(&a),
                converted: ob,
                converted_route: compare::route_name(&b),
            });
        }
    }
    Ok(Report {
        probes,
        differences,
    })
}

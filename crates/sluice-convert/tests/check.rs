//! `convert --check`: the converted objects answer every generated request as the originals
//! do, for the examples and the test inputs; a hand-broken conversion fails with a readable diff.
mod common;
use common::*;
use sluice_config::{Kind, Loaded};
use sluice_convert::check::check;
use sluice_convert::{From, Options};

fn from_of(loaded: &Loaded) -> Option<From> {
    let has = |k: Kind| loaded.objects.iter().any(|o| o.kind == k);
    if has(Kind::Ingress) {
        Some(From::Ingress)
    } else if has(Kind::VirtualService) || has(Kind::Gateway) {
        Some(From::Istio)
    } else {
        None
    }
}

fn passes(loaded: &Loaded, from: From, what: &str) {
    let c = convert(loaded, from);
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(loaded, &yaml, &Options::new(from)).expect("both compile");
    assert!(
        report.probes > 10,
        "{what}: only {} requests",
        report.probes
    );
    assert!(
        report.differences.is_empty(),
        "{what}:\n{}\n{yaml}",
        report.text()
    );
}

#[test]
fn every_example_converts_without_a_difference() {
    let mut checked = Vec::new();
    for root in ["../../examples", "../../../shared/examples"] {
        let Ok(dirs) = std::fs::read_dir(path(root)) else {
            continue;
        };
        for dir in dirs.flatten().map(|d| d.path()).filter(|p| p.is_dir()) {
            let loaded = sluice_config::load_paths(&[&dir]).expect("readable");
            if loaded.has_errors() {
                continue; // examples/bad: refused before any conversion
            }
            if let Some(from) = from_of(&loaded) {
                passes(&loaded, from, &dir.display().to_string());
                checked.push(dir);
            }
        }
    }
    assert!(
        checked.iter().any(|d| d.ends_with("examples/seed")),
        "{checked:?}"
    );
}

#[test]
fn ingress_converts_without_a_difference() {
    passes(
        &load("testdata/ingress.yaml"),
        From::Ingress,
        "ingress.yaml",
    );
}

#[test]
fn istio_converts_with_only_the_warned_difference() {
    // The one difference the conversion warns about: Istio's prefix rewrite of /legacy also
    // rewrites /legacyx (to /v2x); the Gateway API's ReplacePrefixMatch works on whole elements.
    let loaded = load("testdata/istio.yaml");
    let c = convert(&loaded, From::Istio);
    let yaml = sluice_convert::yaml(&c.objects);
    let report = check(&loaded, &yaml, &Options::new(From::Istio)).expect("both compile");
    assert!(report.probes > 50, "{}", report.probes);
    assert!(!report.differences.is_empty());
    for d in &report.differences {
        let p = d.probe.path.as_str();
        assert!(
            p.starts_with("/legacy") && p != "/legacy" && !p.starts_with("/legacy/"),
            "{}\n{yaml}",
            report.text()
        );
        assert!(d.original.contains("path=/v2"), "{}", report.text());
    }
}

#[test]
fn a_broken_conversion_fails_with_a_readable_diff() {
    let loaded = load("testdata/istio.yaml");
    let c = convert(&loaded, From::Istio);
    let yaml = sluice_convert::yaml(&c.objects);
    let broken = yaml.replacen("weight: 80", "weight: 50", 1);
    assert_ne!(broken, yaml);
    let report = check(&loaded, &broken, &Options::new(From::Istio)).expect("both compile");
    assert!(!report.differences.is_empty());
    let text = report.text();
    assert!(
        text.contains("difference: GET http://shop.example.com:80/api\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "original:  forward 80.00% → [10.1.0.1:9001, 10.1.0.2:9001] + 20.00% → [10.1.0.3:9002]"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "converted: forward 71.43% → [10.1.0.1:9001, 10.1.0.2:9001] + 28.57% → [10.1.0.3:9002]"
        ),
        "{text}"
    );
    assert!(
        text.contains("by VirtualService shop/shop http[1] api"),
        "{text}"
    );
    assert!(
        text.contains("by HTTPRoute shop/shop rules[1] api"),
        "{text}"
    );
    assert!(text.contains("check FAILED"), "{text}");

    // An Ingress conversion whose exact path lost its rule.
    let loaded = load("testdata/ingress.yaml");
    let c = convert(&loaded, From::Ingress);
    let yaml = sluice_convert::yaml(&c.objects);
    let broken = yaml.replacen("\"Exact\"", "\"PathPrefix\"", 1);
    let report = check(&loaded, &broken, &Options::new(From::Ingress)).expect("both compile");
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.probe.path == "/api/v1/health/x"),
        "{}",
        report.text()
    );
}

#[test]
fn output_that_does_not_load_is_an_error() {
    let loaded = load("testdata/istio.yaml");
    let err = check(
        &loaded,
        "kind: HTTPRoute\n  bad: [",
        &Options::new(From::Istio),
    )
    .expect_err("invalid");
    assert!(err.to_string().contains("do not load"), "{err}");
}

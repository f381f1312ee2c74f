//! The loader: origins, kinds, apiVersions, duplicates, and that no input makes it panic.
use proptest::prelude::*;
use sluice_config::{Kind, Loader, Severity};

fn load(text: &str) -> sluice_config::Loaded {
    let mut l = Loader::new();
    l.add_text("mem.yaml".into(), text);
    l.finish()
}

fn codes(text: &str) -> Vec<(&'static str, u32)> {
    load(text)
        .diagnostics
        .iter()
        .map(|d| (d.code, d.origin.as_ref().map_or(0, |o| o.line)))
        .collect()
}

#[test]
fn multi_document_list_and_default_namespace() {
    let l = load(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1beta1\n  kind: Gateway\n  metadata: {name: a}\n  spec: {}\n---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: b, namespace: x}\nspec: {host: b}\n",
    );
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.objects.len(), 2);
    assert_eq!(l.objects[0].kind, Kind::Gateway);
    assert_eq!(l.objects[0].namespace, "default");
    assert_eq!(l.objects[1].namespace, "x");
}

#[test]
fn missing_api_version_names_the_right_one() {
    let l = load("kind: VirtualService\nmetadata: {name: a}\nspec: {hosts: [a]}\n");
    let d = &l.diagnostics[0];
    assert_eq!(d.code, "SLU0002");
    assert!(d
        .help
        .as_deref()
        .unwrap()
        .contains("networking.istio.io/v1"));
    // Still read as the kind it evidently is.
    assert_eq!(l.objects.len(), 1);
}

#[test]
fn wrong_api_version_is_an_error() {
    assert_eq!(
        codes("apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: a}\n"),
        vec![("SLU0003", 1)]
    );
}

#[test]
fn unsupported_and_unserved_kinds() {
    let l = load("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n");
    let sev: Vec<_> = l.diagnostics.iter().map(|d| (d.code, d.severity)).collect();
    assert_eq!(
        sev,
        vec![("SLU0006", Severity::Warning), ("SLU0007", Severity::Info)]
    );
    assert!(l.objects.is_empty());
}

#[test]
fn duplicates_name_both_places() {
    let l = load("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a, namespace: default}\n");
    let d = &l.diagnostics[0];
    assert_eq!(d.code, "SLU0005");
    assert_eq!(d.origin.as_ref().unwrap().line, 5);
    assert!(d.message.contains("mem.yaml:1:1"), "{}", d.message);
    assert_eq!(l.objects.len(), 1);
}

#[test]
fn every_schema_error_is_reported_not_just_the_first() {
    let c = codes("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  hosts: [a]\n  htp: []\n  http:\n  - timeout: soon\n    retries: {attempts: many}\n");
    assert_eq!(c, vec![("IST0106", 6), ("IST0106", 8), ("IST0106", 9)]);
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let c = codes("apiVersion: v1\nkind: Secret\nmetadata:\n\tname: a\n");
    assert_eq!(c[0].0, "SLU0001");
    assert_eq!(c[0].1, 4);
}

#[test]
fn secret_data_and_string_data() {
    let l = load("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: aGVsbG8=}\nstringData: {tls.key: plain}\n");
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let s = l.objects[0].secret().unwrap();
    assert_eq!(s.data["tls.crt"], "aGVsbG8=");
    assert_eq!(s.string_data["tls.key"], "plain");
}

#[test]
fn configmap_mount_layout_is_read_once() {
    let dir = std::env::temp_dir().join(format!("sluice-cm-{}", std::process::id()));
    let data = dir.join("..2026_01_01");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gw.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_01_01", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/gw.yaml", dir.join("gw.yaml")).unwrap();
    let l = sluice_config::load_paths(&[&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(l.objects.len(), 1, "{:?}", l.diagnostics);
    assert!(l.diagnostics.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load(&text);
    }

    #[test]
    fn never_panics_on_yamlish(text in "([a-zA-Z:{}\\[\\],&*!|>'\"# -]|\n|  |\t){0,200}") {
        let _ = load(&text);
    }

    #[test]
    fn never_panics_on_object_shapes(
        kind in prop::sample::select(vec!["Gateway", "VirtualService", "DestinationRule", "ServiceEntry", "WorkloadEntry", "Secret", "Service", "EndpointSlice"]),
        body in "([a-z]{1,8}: (\\[\\]|\\{\\}|[a-z0-9]{0,5}|-1|\\[[a-z0-9, ]{0,10}\\])\n){0,6}",
    ) {
        let api = match kind { "Secret" | "Service" => "v1", "EndpointSlice" => "discovery.k8s.io/v1", _ => "networking.istio.io/v1" };
        let text = format!("apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\nspec:\n{}", body.lines().map(|l| format!("  {l}\n")).collect::<String>());
        let l = load(&text);
        for o in &l.objects {
            let mut out = Vec::new();
            sluice_config::validate::validate_object(o, &mut out);
        }
    }
}

#[test]
fn a_later_duplicate_replaces_the_earlier_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("sluice-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gw = |host: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: web}}\nspec:\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [{host}]}}]\n")
    };
    // The earlier copy's own problems go with it: that definition is never used.
    std::fs::write(
        dir.join("a.yaml"),
        format!("{}  bogus: 1\n", gw("a.example.com")),
    )
    .unwrap();
    let other = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: a}\n---\n";
    std::fs::write(
        dir.join("b.yaml"),
        format!("{other}{}", gw("b.example.com")),
    )
    .unwrap();
    let l = sluice_config::load_paths(&[&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // Never a refusal: one warning, naming both places.
    assert!(!l.has_errors(), "{:?}", l.diagnostics);
    let d = &l.diagnostics[0];
    assert_eq!(
        (d.code, d.severity, l.diagnostics.len()),
        ("SLU0005", Severity::Warning, 1)
    );
    let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
    assert!(
        d.message.contains(&format!("{}:1:1", a.display())),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(&format!("{}:6:1", b.display())),
        "{}",
        d.message
    );
    assert_eq!(d.origin.as_ref().unwrap().line, 6);

    // The later definition wins, in the earlier one's place (as `kubectl apply` in order).
    assert_eq!(l.objects.len(), 2);
    let g = &l.objects[0];
    assert_eq!((g.kind, g.name.as_str()), (Kind::Gateway, "gw"));
    assert_eq!(g.gateway().unwrap().servers[0].hosts, ["b.example.com"]);
    assert_eq!(&*g.file, b.display().to_string());
    assert!(g.seq < l.objects[1].seq);
}

#[test]
fn ignored_fields_are_warned_about_once_at_their_line() {
    let l = load("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: a\n  trafficPolicy:\n    connectionPool:\n      http: {idleTimeout: 1h, h2UpgradePolicy: UPGRADE}\n    loadBalancer:\n      warmupDurationSecs: 10s\n  subsets:\n  - name: v1\n    trafficPolicy:\n      loadBalancer: {warmupDurationSecs: 5s}\n      tunnel: {protocol: CONNECT, targetHost: a.com, targetPort: 80}\n");
    let got: Vec<(&str, Severity, u32, &str)> = l
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                d.severity,
                d.origin.as_ref().unwrap().line,
                d.field.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "SLU0015",
                Severity::Warning,
                8,
                "spec.trafficPolicy.connectionPool.http.h2UpgradePolicy"
            ),
            // Once for the object (not again in the subset), and not for the fields under it.
            (
                "SLU0015",
                Severity::Warning,
                10,
                "spec.trafficPolicy.loadBalancer.warmupDurationSecs"
            ),
            (
                "SLU0009",
                Severity::Error,
                15,
                "spec.subsets[0].trafficPolicy.tunnel"
            ),
        ]
    );
    let d = &l.diagnostics[1];
    assert!(d.message.contains("is ignored"), "{}", d.message);
    assert!(d.help.as_deref().unwrap().contains("full share at once"));
}

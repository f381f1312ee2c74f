//! deploy/: the plain manifests pass the Kubernetes schemas (kubernetes-validate, offline),
//! the Helm chart renders to exactly them, the RBAC grants what the watchers read and no more
//! (Secrets only in the gateway's namespace), and the GatewayClass is one sluice serves.
use sluice_config::yaml::{self, Node, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn docs(text: &str) -> Vec<Node> {
    let (docs, errors) = yaml::parse(text);
    assert!(errors.is_empty(), "{errors:?}");
    docs.into_iter()
        .map(|d| d.root)
        .filter(|n| !n.is_null())
        .collect()
}

fn at<'a>(n: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter().try_fold(n, |n, k| n.get(k))
}

fn strs(n: Option<&Node>) -> Vec<String> {
    match n.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

const PLAIN: [&str; 6] = [
    "serviceaccount.yaml",
    "rbac.yaml",
    "deployment.yaml",
    "service.yaml",
    "pdb.yaml",
    "hpa.yaml",
];

#[test]
fn manifests_pass_the_kubernetes_schemas() {
    let run = Command::new(root().join("scripts/validate-deploy")).output();
    match run {
        Ok(out) if out.status.success() => {}
        Ok(out)
            if std::env::var_os("SLUICE_REQUIRE_KUBERNETES_VALIDATE").is_some()
                || out.status.code() != Some(127) =>
        {
            panic!(
                "deploy/ fails schema validation:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
        other => {
            eprintln!("kubernetes-validate unavailable ({other:?}); ./scripts/test installs it")
        }
    }
}

/// The chart's templates with `{{ .Values.* }}` and `{{ .Release.Namespace }}` filled in: the
/// only template syntax the chart uses (no Helm binary here; this is the renderer).
fn render(template: &str, values: &Node, namespace: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed") + start;
        let expr = rest[start + 2..end].trim();
        let value = if expr == ".Release.Namespace" {
            namespace.to_string()
        } else {
            let path: Vec<&str> = expr
                .strip_prefix(".Values.")
                .unwrap_or_else(|| panic!("unsupported template expression {expr}"))
                .split('.')
                .collect();
            let Some(Node {
                value: Value::Scalar { text, .. },
                ..
            }) = at(values, &path)
            else {
                panic!("no value for {expr}");
            };
            text.clone()
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_chart_renders_to_the_plain_manifests() {
    let values = docs(&read("deploy/helm/sluice/values.yaml")).remove(0);
    for file in PLAIN {
        let rendered = render(
            &read(&format!("deploy/helm/sluice/templates/{file}")),
            &values,
            "istio-system",
        );
        assert_eq!(rendered, read(&format!("deploy/{file}")), "{file}");
    }
    let templates: BTreeSet<String> =
        std::fs::read_dir(root().join("deploy/helm/sluice/templates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(templates, PLAIN.iter().map(|s| s.to_string()).collect());
}

#[test]
fn rbac_grants_what_the_watchers_read_and_secrets_only_in_the_namespace() {
    let rbac = docs(&read("deploy/rbac.yaml"));
    let rules = |kind: &str| -> Vec<(String, String, Vec<String>)> {
        let role = rbac
            .iter()
            .find(|d| d.get("kind").and_then(Node::as_str) == Some(kind))
            .unwrap();
        let Some(Value::Seq(rules)) = role.get("rules").map(|r| &r.value) else {
            panic!()
        };
        let mut out = Vec::new();
        for r in rules {
            for g in strs(r.get("apiGroups")) {
                for res in strs(r.get("resources")) {
                    out.push((g.clone(), res, strs(r.get("verbs"))));
                }
            }
        }
        out
    };
    let cluster = rules("ClusterRole");
    let namespaced = rules("Role");
    for w in sluice_kube::RESOURCES {
        let (list, table) = if w.kind == "Secret" {
            ("Role", &namespaced)
        } else {
            ("ClusterRole", &cluster)
        };
        let ok = table.iter().any(|(g, r, verbs)| {
            g == w.group
                && r == w.plural
                && ["list", "watch"]
                    .iter()
                    .all(|v| verbs.iter().any(|x| x == v))
        });
        assert!(ok, "{list} lacks list/watch on {}", w.resource());
    }
    assert!(
        !cluster.iter().any(|(_, r, _)| r == "secrets"),
        "Secrets must not be readable cluster-wide"
    );
    assert!(
        cluster.iter().all(|(_, r, verbs)| r.ends_with("/status")
            || verbs
                .iter()
                .all(|v| ["get", "list", "watch"].contains(&v.as_str()))),
        "only status is written"
    );
    assert!(namespaced.iter().any(|(g, r, v)| g == "coordination.k8s.io"
        && r == "leases"
        && v.iter().any(|v| v == "update")));
}

#[test]
fn the_deployment_is_probed_and_knows_itself() {
    let d = docs(&read("deploy/deployment.yaml")).remove(0);
    let c = match &at(&d, &["spec", "template", "spec", "containers"])
        .unwrap()
        .value
    {
        Value::Seq(c) => c[0].clone(),
        _ => panic!(),
    };
    assert_eq!(
        at(&c, &["readinessProbe", "httpGet", "path"]).and_then(Node::as_str),
        Some("/healthz/ready")
    );
    assert_eq!(
        at(&c, &["readinessProbe", "httpGet", "port"]).and_then(Node::as_i64),
        Some(15021)
    );
    assert_eq!(
        at(&c, &["securityContext", "readOnlyRootFilesystem"]).and_then(Node::as_bool),
        Some(true)
    );
    let Some(Value::Seq(env)) = c.get("env").map(|e| &e.value) else {
        panic!()
    };
    let names: Vec<&str> = env
        .iter()
        .filter_map(|e| e.get("name").and_then(Node::as_str))
        .collect();
    assert_eq!(names, ["POD_NAME", "POD_NAMESPACE", "INSTANCE_IP"]);
    assert!(strs(c.get("args")).contains(&"--kubernetes".to_string()));
    // The Service maps 80 and 443 to the ports the container binds, and exposes 15021.
    let svc = docs(&read("deploy/service.yaml")).remove(0);
    let Some(Value::Seq(ports)) = at(&svc, &["spec", "ports"]).map(|p| &p.value) else {
        panic!()
    };
    let pairs: Vec<(i64, i64)> = ports
        .iter()
        .map(|p| {
            (
                p.get("port").and_then(Node::as_i64).unwrap(),
                p.get("targetPort").and_then(Node::as_i64).unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, [(15021, 15021), (80, 8080), (443, 8443)]);
}

#[test]
fn the_gateway_class_is_served_by_sluice() {
    let loaded = sluice_config::load_paths(&[root().join("deploy/gateway-api")]).unwrap();
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let gc = loaded.objects[0].gateway_class().unwrap();
    assert_eq!(
        gc.controller_name.as_deref(),
        Some(sluice_compile::gateway_status::CONTROLLER)
    );
}

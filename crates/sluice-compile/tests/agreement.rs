//! `validate` and the compile read references the same way: whenever the compile gives a
//! cluster a problem (unknown host, unknown subset: the route answers 503 NC), the analysis
//! reports it. Property-tested over namespaces, `exportTo` and DestinationRule placement.
use proptest::prelude::*;
use sluice_compile::snapshot::ClusterProblem;
use sluice_compile::{compile, AnalyzeOptions, GatewayIdentity};
use sluice_config::diag::codes;
use sluice_config::Loader;

const NAMESPACES: [&str; 3] = ["default", "istio-system", "other"];
const EXPORTS: [&str; 5] = ["", "[\".\"]", "[\"*\"]", "[istio-system]", "[other]"];

fn export(i: usize) -> String {
    match EXPORTS[i] {
        "" => String::new(),
        e => format!("  exportTo: {e}\n"),
    }
}

#[derive(Debug, Clone)]
struct World {
    se_ns: usize,
    se_export: usize,
    /// (namespace, exportTo, host written short, subsets v1/v2 defined).
    rules: Vec<(usize, usize, bool, [bool; 2])>,
    /// Destination host defined (else a host nobody defines) and subset (0: none, 1–3: v1–v3).
    dest_known: bool,
    subset: usize,
    vs_export: usize,
}

fn world() -> impl Strategy<Value = World> {
    (
        0..3usize,
        0..5usize,
        prop::collection::vec(
            (0..3usize, 0..5usize, any::<bool>(), any::<[bool; 2]>()),
            0..3,
        ),
        any::<bool>(),
        0..4usize,
        0..5usize,
    )
        .prop_map(
            |(se_ns, se_export, rules, dest_known, subset, vs_export)| World {
                se_ns,
                se_export,
                rules,
                dest_known,
                subset,
                vs_export,
            },
        )
}

fn yaml(w: &World) -> String {
    let se_ns = NAMESPACES[w.se_ns];
    let mut y = format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: istio-system}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [\"*\"]}}]\n---\n\
         apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: svc, namespace: {se_ns}}}\nspec:\n  hosts: [svc.{se_ns}.svc.cluster.local]\n  resolution: STATIC\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  endpoints:\n  - {{address: 10.0.0.1, labels: {{version: v1}}}}\n  - {{address: 10.0.0.2, labels: {{version: v2}}}}\n{}---\n",
        export(w.se_export)
    );
    for (i, (ns, exp, short, subsets)) in w.rules.iter().enumerate() {
        let ns_name = NAMESPACES[*ns];
        let host = if *short && *ns == w.se_ns {
            "svc".to_string()
        } else {
            format!("svc.{se_ns}.svc.cluster.local")
        };
        let subsets: String = subsets
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(v, _)| {
                format!(
                    "  - {{name: v{}, labels: {{version: v{}}}}}\n",
                    v + 1,
                    v + 1
                )
            })
            .collect();
        let subsets = if subsets.is_empty() {
            String::new()
        } else {
            format!("  subsets:\n{subsets}")
        };
        y += &format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: dr{i}, namespace: {ns_name}}}\nspec:\n  host: {host}\n{}{subsets}---\n",
            export(*exp)
        );
    }
    let host = if w.dest_known {
        format!("svc.{se_ns}.svc.cluster.local")
    } else {
        "nobody.example.com".to_string()
    };
    let subset = match w.subset {
        0 => String::new(),
        n => format!(", subset: v{n}"),
    };
    y + &format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec:\n  hosts: [\"*\"]\n  gateways: [istio-system/gw]\n{}  http:\n  - route:\n    - destination: {{host: {host}{subset}}}\n",
        export(w.vs_export)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_cluster_problem_is_reported(w in world()) {
        let text = yaml(&w);
        let mut l = Loader::new();
        l.add_text("t.yaml".into(), &text);
        let loaded = l.finish();
        let (store, diags) = sluice_compile::check(&loaded, &AnalyzeOptions::default());
        let (snapshot, _) = compile(&store, &GatewayIdentity::default());
        for cluster in snapshot.clusters.values() {
            let what = match &cluster.problem {
                Some(ClusterProblem::UnknownHost) => cluster.host.clone(),
                Some(ClusterProblem::UnknownSubset) => format!("+{}", cluster.subset),
                _ => continue,
            };
            let reported = diags.iter().any(|d| {
                d.code == codes::REFERENCED_RESOURCE_NOT_FOUND
                    && (d.message.contains(&what) || d.help.as_deref().is_some_and(|h| h.contains(&what)))
            });
            prop_assert!(reported, "{:?} of {} not reported\n{text}\n{diags:#?}", cluster.problem, cluster.name);
        }
    }
}

//! `sluice test FILE…`: route assertions for CI. A test file names its configuration and lists
//! requests with what the gateway must do with them; each request is explained offline
//! (`sluice_compile::explain`) and compared field by field.
use serde::Deserialize;
use sluice_compile::explain::{explain, Explanation, Request};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestFile {
    /// Configuration files or directories, relative to the test file.
    pub config: Vec<String>,
    #[serde(default)]
    pub tests: Vec<Case>,
}

/// One request and what must happen to it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub name: String,
    pub request: TestRequest,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestRequest {
    /// The Gateway (service) port; default 80.
    pub port: Option<u32>,
    pub host: Option<String>,
    pub sni: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Each field given is checked; fields left out are not.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    /// `namespace/name` of the VirtualService, HTTPRoute, Ingress, TLSRoute or TCPRoute.
    pub route: Option<String>,
    /// Its kind (`VirtualService`, `HTTPRoute`, `GRPCRoute`, `Ingress`, …).
    pub kind: Option<String>,
    /// The route's `name`.
    pub route_name: Option<String>,
    /// The rule's position in the object (`http[i]`, `rules[i]`).
    pub index: Option<usize>,
    /// `forward`, `redirect`, `direct_response`, `no_route`, …
    pub action: Option<String>,
    /// Clusters the request may go to, each with its share in percent (0: any share).
    pub clusters: Option<BTreeMap<String, u32>>,
    /// The status the gateway answers itself (redirects, direct responses, local errors).
    pub status: Option<u16>,
    /// A redirect's `location`.
    pub location: Option<String>,
    /// The path and query the backend gets.
    pub path: Option<String>,
    /// The authority the backend gets when the route rewrites it.
    pub authority: Option<String>,
    /// Request headers the route sets (or adds).
    pub request_headers: Option<BTreeMap<String, String>>,
    /// Response headers the route sets (or adds).
    pub response_headers: Option<BTreeMap<String, String>>,
}

/// The outcome of one case: `None` passed, else the differences.
pub struct Outcome {
    pub name: String,
    pub failures: Vec<String>,
}

/// Runs every case of a file against its compiled configuration.
pub fn run_cases(file: &TestFile, snapshot: &sluice_compile::snapshot::Snapshot) -> Vec<Outcome> {
    file.tests
        .iter()
        .map(|case| {
            let r = &case.request;
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            let e = explain(
                snapshot,
                &Request {
                    port: r.port.unwrap_or(80),
                    host: r.host.as_deref(),
                    sni: r.sni.as_deref(),
                    path: r.path.as_deref().unwrap_or("/"),
                    method: r.method.as_deref().unwrap_or("GET"),
                    headers: &headers,
                },
            );
            Outcome {
                name: case.name.clone(),
                failures: compare(&case.expect, &e),
            }
        })
        .collect()
}

fn compare(want: &Expect, e: &Explanation) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: Option<String>, got: Option<String>| {
        if let Some(w) = want {
            if got.as_deref() != Some(w.as_str()) {
                out.push(format!(
                    "{field}: expected {w}, got {}",
                    got.as_deref().unwrap_or("nothing")
                ));
            }
        }
    };
    let route = e.route.as_ref();
    check(
        "route",
        want.route.clone(),
        route.map(|r| r.virtual_service.clone()),
    );
    check("kind", want.kind.clone(), route.map(|r| r.kind.to_string()));
    check(
        "routeName",
        want.route_name.clone(),
        route.and_then(|r| r.name.clone()),
    );
    check(
        "index",
        want.index.map(|i| i.to_string()),
        route.map(|r| r.index.to_string()),
    );
    check("action", want.action.clone(), Some(e.action.to_string()));
    check(
        "status",
        want.status.map(|s| s.to_string()),
        e.status.map(|s| s.to_string()),
    );
    check("location", want.location.clone(), e.location.clone());
    let policy = e.policy.as_ref();
    check(
        "path",
        want.path.clone(),
        policy.map(|p| p.upstream_path.clone()),
    );
    check(
        "authority",
        want.authority.clone(),
        policy.and_then(|p| p.upstream_authority.clone()),
    );
    if let Some(clusters) = &want.clusters {
        // Shares in percent, as `explain` prints them.
        let total: u32 = e.clusters.iter().map(|c| c.weight).sum::<u32>().max(1);
        let got: BTreeMap<String, u32> = e
            .clusters
            .iter()
            .map(|c| (c.name.clone(), (c.weight * 100 + total / 2) / total))
            .collect();
        // A weight of 0 in the expectation means "any weight".
        let same = got.len() == clusters.len()
            && clusters
                .iter()
                .all(|(n, w)| got.get(n).is_some_and(|g| *w == 0 || g == w));
        if !same {
            out.push(format!("clusters: expected {clusters:?}, got {got:?}"));
        }
    }
    for (field, want, got) in [
        (
            "requestHeaders",
            &want.request_headers,
            policy.map(|p| &p.request_headers),
        ),
        (
            "responseHeaders",
            &want.response_headers,
            policy.map(|p| &p.response_headers),
        ),
    ] {
        let Some(want) = want else { continue };
        let got: BTreeMap<&str, &str> = got
            .into_iter()
            .flat_map(|ops| ops.set.iter().chain(ops.add.iter()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for (k, v) in want {
            let name = k.to_ascii_lowercase();
            match got.get(name.as_str()) {
                Some(g) if *g == v => {}
                Some(g) => out.push(format!("{field}.{k}: expected {v}, got {g}")),
                None => out.push(format!("{field}.{k}: expected {v}, not set")),
            }
        }
    }
    out
}

/// The configuration paths of a test file, relative to it.
pub fn config_paths(test_file: &Path, file: &TestFile) -> Vec<PathBuf> {
    let dir = test_file.parent().unwrap_or(Path::new("."));
    file.config.iter().map(|c| dir.join(c)).collect()
}

/// A test run as a test runner prints it: one line per case, the differences under a failure,
/// a summary.
pub fn report(path: &Path, outcomes: &[Outcome]) -> (String, usize) {
    let mut text = String::new();
    let mut failed = 0;
    for o in outcomes {
        if o.failures.is_empty() {
            let _ = writeln!(text, "ok     {} :: {}", path.display(), o.name);
        } else {
            failed += 1;
            let _ = writeln!(text, "FAILED {} :: {}", path.display(), o.name);
            for f in &o.failures {
                let _ = writeln!(text, "         {f}");
            }
        }
    }
    (text, failed)
}

//! `sluice explain` on the seed configuration, JSON fields as documented.
use std::process::Command;

fn explain(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("explain")
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed"),
            "-o",
            "json",
        ])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn users_split_between_subsets() {
    let (code, e) = explain(&["--host", "shop.example.com", "--path", "/users/42"]);
    assert_eq!(code, 0);
    assert_eq!(e["listener"], "0.0.0.0_80");
    assert_eq!(e["route_config"], "http.80");
    assert_eq!(e["virtual_host"], "*:80");
    assert_eq!(e["route"]["virtual_service"], "default/demo");
    assert_eq!(e["route"]["name"], "users-canary");
    assert_eq!(e["action"], "forward");
    assert_eq!(
        e["clusters"][0]["name"],
        "outbound|8000|stable|demo.default.svc.cluster.local"
    );
    assert_eq!(e["clusters"][0]["weight"], 90);
    assert_eq!(
        e["clusters"][1]["name"],
        "outbound|8000|testversion|demo.default.svc.cluster.local"
    );
    assert_eq!(e["clusters"][1]["weight"], 10);
    assert_eq!(
        e["cluster"],
        "outbound|8000|stable|demo.default.svc.cluster.local"
    );
    assert_eq!(e["error"], serde_json::Value::Null);
}

#[test]
fn unmatched_path_is_no_route_and_unknown_port_no_listener() {
    let (_, e) = explain(&["--host", "a", "--path", "/other"]);
    assert_eq!(
        (
            e["action"].as_str(),
            e["status"].as_u64(),
            e["error"].as_str()
        ),
        (Some("no_route"), Some(404), Some("no_route"))
    );
    let (_, e) = explain(&["--host", "a", "--port", "443", "--path", "/users"]);
    assert_eq!(
        (e["action"].as_str(), e["error"].as_str()),
        (Some("no_listener"), Some("no_listener"))
    );
}

#[test]
fn port_map_renames_listener() {
    let (_, e) = explain(&["--host", "a", "--path", "/tasks", "--port-map", "80=8080"]);
    assert_eq!(e["listener"], "0.0.0.0_8080");
    assert_eq!(e["route_config"], "http.8080");
    assert_eq!(
        e["cluster"],
        "outbound|8000||demo.default.svc.cluster.local"
    );
}

#[test]
fn policies_of_the_route_are_reported() {
    let (_, e) = explain(&["--host", "a", "--path", "/users/./42?x=1"]);
    let p = &e["policy"];
    assert_eq!(p["upstream_path"], "/users/42?x=1");
    assert_eq!(p["timeout"], "5s");
    assert_eq!(p["retries"]["attempts"], 3);
    assert_eq!(p["retries"]["per_try_timeout"], "2s");
    // /tasks has no `retries`: Istio's default policy.
    let (_, e) = explain(&["--host", "a", "--path", "/tasks"]);
    let r = &e["policy"]["retries"];
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["retry_on"].as_array().unwrap().len(), 5);
    assert_eq!(e["policy"]["timeout"], serde_json::Value::Null);
}

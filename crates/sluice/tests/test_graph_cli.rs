//! `sluice test` (route assertions) and `sluice graph` on the examples; the graphs of the
//! compiled examples are golden files, so a change of routing shows in review.
mod common;
use std::process::{Command, Output};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_examples_route_tests_pass() {
    let out = sluice(&[
        "test",
        &format!("{EXAMPLES}/tests/seed.yaml"),
        &format!("{EXAMPLES}/tests/gateway-api.yaml"),
        &format!("{EXAMPLES}/tests/ingress.yaml"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("8 passed, 0 failed"), "{stdout}");
}

/// A broken expectation fails with the expected and the actual value, and exit 1.
#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let dir = std::env::temp_dir().join(format!("sluice-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        format!(
            "config: [{EXAMPLES}/seed]\ntests:\n  - name: users go to testversion only\n    request: {{host: a, path: /users/1}}\n    expect:\n      routeName: tasks\n      clusters: {{\"outbound|8000|testversion|demo.default.svc.cluster.local\": 100}}\n"
        ),
    )
    .unwrap();
    let out = sluice(&["test", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("routeName: expected tasks, got users-canary"),
        "{stdout}"
    );
    assert!(stdout.contains("clusters: expected"), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
    // A typo in the test file is named with its line and a suggestion.
    std::fs::write(
        &file,
        format!("config: [{EXAMPLES}/seed]\ntests:\n  - name: x\n    request: {{host: a}}\n    expect: {{stauts: 404}}\n"),
    )
    .unwrap();
    let out = sluice(&["test", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(":5:"), "{stderr}");
    assert!(stderr.contains("stauts"), "{stderr}");
    assert!(stderr.contains("status"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn graph_draws_the_seed() {
    let seed = format!("{EXAMPLES}/seed");
    let out = sluice(&["graph", "-c", &seed]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    assert!(
        text.contains("VirtualService default/demo #0 (users-canary)"),
        "{text}"
    );
    assert!(
        text.contains("-->|\"90%\"| cluster_outbound_8000_stable_demo"),
        "{text}"
    );
    assert!(text.contains("endpoint 127.0.0.1:18003"), "{text}");
    let out = sluice(&["graph", "-c", &seed, "-o", "dot"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("digraph sluice {"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
    assert!(text.contains("[label=\"10%\"]"), "{text}");
}

#[test]
fn the_compiled_examples_are_unchanged() {
    for example in ["seed", "gateway-api", "ingress"] {
        let out = sluice(&["graph", "-c", &format!("{EXAMPLES}/{example}")]);
        assert_eq!(out.status.code(), Some(0));
        common::golden(
            &format!("graph-{example}.mmd"),
            &String::from_utf8_lossy(&out.stdout),
        );
    }
}

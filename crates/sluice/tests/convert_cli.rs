//! `sluice convert` as a user runs it: Gateway API YAML on stdout, warnings with file and line
//! on stderr, `--check` passing on the seed and failing with a diff (exit 1) on a broken file.
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sluice(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run sluice");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_seed_converts_and_checks() {
    let (code, out, err) = sluice(&[
        "convert",
        "examples/seed",
        "--from",
        "istio",
        "--to",
        "gateway-api",
        "--check",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("---\n"), "{out}");
    assert!(out.contains("kind: \"HTTPRoute\""), "{out}");
    // The 90/10 split between subsets is a split between generated Services.
    assert!(out.contains("name: \"demo-stable\""), "{out}");
    assert!(out.contains("weight: 90"), "{out}");
    assert!(err.contains("check passed"), "{err}");

    let (code, out, _) = sluice(&["convert", "examples/seed", "--from", "istio", "-o", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list["kind"], "List");
}

#[test]
fn warnings_name_file_and_line() {
    let (code, out, err) = sluice(&[
        "convert",
        "crates/sluice-convert/testdata/istio.yaml",
        "--from",
        "istio",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning[SLU0040]: fault injection has no Gateway API equivalent"),
        "{err}"
    );
    assert!(
        err.contains("crates/sluice-convert/testdata/istio.yaml:58:"),
        "{err}"
    );
    assert!(
        out.contains("# VirtualService shop/shop (crates/sluice-convert/testdata/istio.yaml:58:"),
        "{out}"
    );
}

#[test]
fn nothing_to_convert_is_an_error() {
    let (code, _, err) = sluice(&["convert", "examples/gateway-api", "--from", "istio"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no Istio Gateway or VirtualService objects to convert"),
        "{err}"
    );
}

#[test]
fn a_difference_fails_the_check() {
    // directResponse has no Gateway API equivalent: the converted route is left out, so the
    // check sees /teapot answered by the next route instead of 418.
    let dir = std::env::temp_dir().join(format!("sluice-convert-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("teapot.yaml");
    let seed =
        std::fs::read_to_string(root().join("examples/seed/virtualservice.yaml")).expect("seed");
    let teapot = seed.replace(
        "  http:\n",
        "  http:\n    - name: teapot\n      match: [{uri: {exact: /teapot}}]\n      directResponse: {status: 418}\n",
    );
    std::fs::write(&file, teapot).expect("write");
    for other in ["gateway.yaml", "destinationrule.yaml", "services.yaml"] {
        std::fs::copy(root().join("examples/seed").join(other), dir.join(other)).expect("copy");
    }
    let (code, _, err) = sluice(&[
        "convert",
        dir.to_str().expect("utf-8"),
        "--from",
        "istio",
        "--check",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "difference: GET http://any-host.example:80/teapot\n  original:  direct_response 418"
        ),
        "{err}"
    );
    assert!(err.contains("check FAILED"), "{err}");
}

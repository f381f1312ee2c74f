//! `sluice validate` as a user runs it: exit codes and the exact output (golden files; set
//! UPDATE_GOLDEN=1 to rewrite them after an intended change).
mod common;
use common::golden;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sluice(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run sluice");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn seed_is_valid() {
    let (code, out) = sluice(&["validate", "examples/seed"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s), 0 warning(s)"), "{out}");
}

#[test]
fn bad_examples_report_every_mistake_text() {
    let (code, out) = sluice(&["validate", "examples/bad"]);
    assert_eq!(code, 1);
    golden("bad.txt", &out);
}

#[test]
fn bad_examples_report_every_mistake_json() {
    let (code, out) = sluice(&["validate", "-o", "json", "examples/bad"]);
    assert_eq!(code, 1);
    golden("bad.json", &out);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let at = |line: u64, code: &str| {
        list.as_array().unwrap().iter().any(|d| {
            d["origin"]["file"] == "examples/bad/broken.yaml"
                && d["origin"]["line"] == line
                && d["code"] == code
        })
    };
    // One row per comment in broken.yaml.
    assert!(at(8, "IST0101"), "missing gateway");
    assert!(at(12, "IST0130"), "unreachable rule");
    assert!(at(13, "IST0106"), "regex");
    assert!(at(15, "IST0101"), "subset");
    assert!(at(17, "IST0106"), "duration");
    assert!(at(27, "IST0106"), "tls without certificate");
    let missing_api = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "SLU0002")
        .unwrap();
    assert_eq!(
        missing_api["origin"]["file"],
        "examples/bad/missing-apiversion.yaml"
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(sluice(&["validate", "no/such/dir"]).0, 2);
    assert_eq!(sluice(&["validate", "--no-such-flag"]).0, 2);
}

#[test]
fn codes_table_lists_every_code() {
    let (code, out) = sluice(&["validate", "--codes"]);
    assert_eq!(code, 0);
    for c in [
        "IST0101", "IST0106", "IST0130", "IST0132", "IST0145", "IST0161", "SLU0002",
    ] {
        assert!(out.contains(c), "{c} missing");
    }
}

#[test]
fn a_path_without_objects_is_an_error() {
    let dir = std::env::temp_dir().join(format!("sluice-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
    let (code, out) = sluice(&["validate", dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("SLU0033") && out.contains("no objects found"),
        "{out}"
    );
}

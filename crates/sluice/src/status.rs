//! `sluice status`: the Gateway API objects with the `status` sluice would write, as JSON or
//! YAML (strings JSON-quoted, which YAML reads as they are).
use serde_json::Value;

/// RFC 3339 UTC for seconds since the epoch.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = sluice_proxy::access_log::civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A YAML document for a JSON value (block style; the writer `sluice convert` uses too).
pub fn yaml(v: &Value) -> String {
    sluice_convert::yaml_value(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_500_000), "2025-11-30T10:53:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn yaml_blocks() {
        let v = serde_json::json!([{"kind": "Gateway", "status": {"conditions": [{"type": "Accepted", "status": "True"}], "listeners": []}}]);
        assert_eq!(
            yaml(&v),
            "- kind: \"Gateway\"\n  status:\n    conditions:\n    - status: \"True\"\n      type: \"Accepted\"\n    listeners: []\n"
        );
    }
}

//! Properties of path normalisation beyond "no panic": what routing relies on.
use proptest::prelude::*;
use sluice_proxy::headers::normalize_path;
use sluice_proxy::PathNormalization;

const MODES: [PathNormalization; 3] = [
    PathNormalization::Base,
    PathNormalization::MergeSlashes,
    PathNormalization::DecodeAndMergeSlashes,
];

/// Segments attackers use, plus plain ones.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("admin".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2e".to_string()),
        Just("%2E%2e".to_string()),
        Just(".%2E".to_string()),
        Just("%2e.".to_string()),
        Just(String::new()),
        Just("..%2F".to_string()),
        Just("%5C..".to_string()),
        Just("a\\..".to_string()),
        Just("..;x".to_string()),
        Just("%41%7e".to_string()),
        Just("%c0%ae%c0%ae".to_string()),
        Just("%252e".to_string()),
        "[a-z0-9._~-]{1,4}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 0..8).prop_map(|s| format!("/{}", s.join("/")))
}

/// `text` with some unreserved characters percent-encoded, in either case.
fn encode_some(text: &str, mask: &[bool]) -> String {
    text.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &enc)| {
            let unreserved = c.is_ascii_alphanumeric() || "-._~".contains(c);
            match (enc && unreserved, c.is_ascii_uppercase()) {
                (true, true) => format!("%{:02X}", c as u32),
                (true, false) => format!("%{:02x}", c as u32),
                (false, _) => c.to_string(),
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn normalising_twice_changes_nothing(p in path()) {
        for mode in MODES {
            let once = normalize_path(&p, mode).unwrap();
            let twice = normalize_path(&once, mode).unwrap();
            prop_assert_eq!(&once, &twice, "{:?}", mode);
        }
    }

    #[test]
    fn no_dot_segment_survives_encoded_or_not(p in path()) {
        for mode in MODES {
            let n = normalize_path(&p, mode).unwrap();
            prop_assert!(n.starts_with('/'), "{n}");
            for seg in n.split('/') {
                let lower = seg.to_ascii_lowercase();
                prop_assert!(
                    !matches!(lower.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."),
                    "{:?} left {:?} in {}", mode, seg, n
                );
            }
        }
    }

    /// Encoding unreserved characters cannot change what a route sees.
    #[test]
    fn encoding_unreserved_characters_changes_nothing(
        segs in prop::collection::vec("[a-zA-Z0-9._~-]{0,5}", 0..6),
        mask in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let plain = format!("/{}", segs.join("/"));
        let encoded = encode_some(&plain, &mask);
        for mode in MODES {
            prop_assert_eq!(
                normalize_path(&plain, mode).unwrap(),
                normalize_path(&encoded, mode).unwrap(),
                "{} vs {}", plain, encoded
            );
        }
    }

    /// Merging modes never leave `//`; BASE never removes a slash run it did not resolve.
    #[test]
    fn merge_modes_leave_no_empty_segment(p in path()) {
        for mode in [PathNormalization::MergeSlashes, PathNormalization::DecodeAndMergeSlashes] {
            let n = normalize_path(&p, mode).unwrap();
            prop_assert!(!n.contains("//"), "{mode:?}: {n}");
        }
    }

    /// A path with nothing to normalise is not copied.
    #[test]
    fn clean_paths_are_borrowed(segs in prop::collection::vec("[a-z0-9_~-]{1,5}", 0..6)) {
        let p = format!("/{}", segs.join("/"));
        for mode in MODES {
            prop_assert!(matches!(normalize_path(&p, mode).unwrap(), std::borrow::Cow::Borrowed(_)));
        }
    }
}

#[test]
fn broken_escapes_are_refused() {
    for p in ["/%", "/%2", "/%zz", "/a%g1"] {
        for mode in MODES {
            assert!(normalize_path(p, mode).is_err(), "{p}");
        }
    }
}

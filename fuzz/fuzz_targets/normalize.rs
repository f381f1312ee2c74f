//! Path normalisation and Host checks on any input, with the properties routing relies on:
//! normalising twice changes nothing, and no `.` or `..` segment (encoded or not) survives.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_proxy::headers::{normalize_path, valid_authority};
use sluice_proxy::PathNormalization;

fuzz_target!(|text: &str| {
    let _ = valid_authority(text);
    let path = format!("/{text}");
    for mode in [
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ] {
        let Ok(once) = normalize_path(&path, mode) else {
            continue;
        };
        let twice = normalize_path(&once, mode).expect("a normalised path is valid");
        assert_eq!(once, twice, "not idempotent for {path:?} in {mode:?}");
        assert!(
            !once.split('/').any(|s| s == "." || s == ".."),
            "dot segment left in {once:?} from {path:?}"
        );
    }
});

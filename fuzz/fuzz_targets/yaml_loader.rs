//! Any text through the loader (YAML/JSON → located tree → typed objects) and the checks that
//! `validate` and `run` apply: diagnostics, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let mut loader = sluice_config::Loader::new();
    loader.add_text("fuzz.yaml".into(), text);
    let loaded = loader.finish();
    let _ = sluice_compile::check(&loaded, &Default::default());
});

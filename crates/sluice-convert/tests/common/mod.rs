#![allow(dead_code)]
use serde_json::Value;
use sluice_config::{Loaded, Store};
use sluice_convert::{Conversion, From, Options, Output};
use std::path::{Path, PathBuf};

pub fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn load(rel: &str) -> Loaded {
    let loaded = sluice_config::load_paths(&[path(rel)]).expect("readable");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded
}

pub fn load_text(text: &str) -> Loaded {
    let mut l = sluice_config::Loader::new();
    l.add_text("input.yaml".into(), text);
    let loaded = l.finish();
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded
}

pub fn convert(loaded: &Loaded, from: From) -> Conversion {
    sluice_convert::convert(&Store::new(loaded.objects.clone()), &Options::new(from))
        .expect("converts")
}

pub fn find<'a>(objects: &'a [Output], kind: &str, ns: &str, name: &str) -> &'a Output {
    objects
        .iter()
        .find(|o| o.kind == kind && o.namespace == ns && o.name == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = objects
                .iter()
                .map(|o| format!("{} {}/{}", o.kind, o.namespace, o.name))
                .collect();
            panic!("no {kind} {ns}/{name} among {all:?}")
        })
}

/// The fields (`spec.http[4].fault`) the warnings point at, sorted.
pub fn warned_fields(c: &Conversion) -> Vec<String> {
    let mut v: Vec<String> = c
        .warnings
        .iter()
        .map(|w| w.field.clone().unwrap_or_default())
        .collect();
    v.sort();
    v
}

pub fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|l| l["name"].as_str().unwrap_or(""))
        .collect()
}

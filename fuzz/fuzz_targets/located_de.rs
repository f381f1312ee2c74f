//! The located deserializer alone, for each Istio spec type: any document gives a value or an
//! error with a path, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_api::istio::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec};
use sluice_config::de::from_node;

fuzz_target!(|text: &str| {
    let (docs, _) = sluice_config::yaml::parse(text);
    for doc in &docs {
        let _ = from_node::<GatewaySpec>(&doc.root, &[]);
        let _ = from_node::<VirtualServiceSpec>(&doc.root, &[]);
        let _ = from_node::<DestinationRuleSpec>(&doc.root, &[]);
        let _ = from_node::<ServiceEntrySpec>(&doc.root, &[]);
    }
});

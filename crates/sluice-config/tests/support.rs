//! No silent field: every field of every type under the Istio and Gateway API specs sluice
//! reads has a row in
//! `sluice_config::support::FIELDS`, and every row names a real field. The types are walked the
//! way serde sees them: a recording Deserializer answers each `deserialize_struct` call (which
//! carries the type's name and field list) and descends into every field.
use serde::de::value::{Error, StrDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use sluice_api::gateway_api;
use sluice_api::istio::*;
use sluice_config::support::{support, Support, FIELDS, RETRY_ON};
use std::cell::RefCell;
use std::collections::BTreeSet;

type Seen = RefCell<BTreeSet<(&'static str, &'static str)>>;

/// A Deserializer that produces a value with every field present, recording what it is asked.
#[derive(Clone, Copy)]
struct Walk<'a> {
    seen: &'a Seen,
    /// Types being filled right now, so a recursive type stops after one level.
    stack: &'a RefCell<Vec<&'static str>>,
}

impl<'de> Deserializer<'de> for Walk<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        // Strings are also durations here, so they must parse as one.
        v.visit_str("1s")
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_bool(true)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(1)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(1)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(1)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_u64(1)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_f64(1.0)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(One {
            walk: self,
            done: false,
        })
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_map(Fields {
            walk: self,
            keys: &["k"],
            next: 0,
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let recursive = self.stack.borrow().contains(&name);
        self.seen
            .borrow_mut()
            .extend(fields.iter().map(|f| (name, *f)));
        self.stack.borrow_mut().push(name);
        let keys = if recursive { &[] } else { fields };
        let r = v.visit_map(Fields {
            walk: self,
            keys,
            next: 0,
        });
        self.stack.borrow_mut().pop();
        r
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let first: StrDeserializer<Error> = variants[0].into_deserializer();
        v.visit_enum(first)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    forward_to_deserialize_any! {
        i8 i16 u8 u16 f32 char str string bytes byte_buf unit unit_struct newtype_struct
        tuple tuple_struct identifier
    }
}

struct One<'a> {
    walk: Walk<'a>,
    done: bool,
}

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        seed.deserialize(self.walk).map(Some)
    }
}

struct Fields<'a> {
    walk: Walk<'a>,
    keys: &'static [&'static str],
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(key) = self.keys.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let key: StrDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.walk)
    }
}

fn walk<T: de::DeserializeOwned>(seen: &Seen) {
    let stack = RefCell::new(Vec::new());
    T::deserialize(Walk {
        seen,
        stack: &stack,
    })
    .expect("every type can be filled");
}

fn api_fields() -> BTreeSet<(&'static str, &'static str)> {
    let seen = Seen::default();
    walk::<GatewaySpec>(&seen);
    walk::<VirtualServiceSpec>(&seen);
    walk::<DestinationRuleSpec>(&seen);
    walk::<ServiceEntrySpec>(&seen);
    walk::<WorkloadEntrySpec>(&seen);
    walk::<gateway_api::GatewayClassSpec>(&seen);
    walk::<gateway_api::KubeGatewaySpec>(&seen);
    walk::<gateway_api::HttpRouteSpec>(&seen);
    walk::<gateway_api::ReferenceGrantSpec>(&seen);
    walk::<gateway_api::TlsRouteSpec>(&seen);
    walk::<gateway_api::L4RouteSpec>(&seen);
    walk::<gateway_api::GrpcRouteSpec>(&seen);
    walk::<gateway_api::BackendTlsPolicySpec>(&seen);
    walk::<gateway_api::ListenerSetSpec>(&seen);
    walk::<sluice_api::ingress::IngressSpec>(&seen);
    walk::<sluice_api::ingress::IngressClassSpec>(&seen);
    seen.into_inner()
}

#[test]
fn every_api_field_has_a_decision() {
    let fields = api_fields();
    assert!(
        fields.len() > 200,
        "the walk reached only {} fields",
        fields.len()
    );
    let missing: Vec<String> = fields
        .iter()
        .filter(|(ty, f)| support(ty, f).is_none())
        .map(|(ty, f)| format!("(\"{ty}\", \"{f}\")"))
        .collect();
    assert!(missing.is_empty(), "fields without a row in support::FIELDS (Implemented, Inert, NotImplemented, Unsupported or RefusedByIstio?):\n{}", missing.join("\n"));
}

#[test]
fn every_row_names_an_api_field() {
    let fields = api_fields();
    let stale: Vec<String> = FIELDS
        .iter()
        .flat_map(|(ty, rows)| rows.iter().map(move |(f, _)| (*ty, *f)))
        .filter(|k| !fields.contains(k))
        .map(|(ty, f)| format!("{ty}.{f}"))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for fields the API types do not have: {stale:?}"
    );
}

#[test]
fn rows_are_unique() {
    let mut seen = BTreeSet::new();
    for (ty, rows) in FIELDS {
        for (f, _) in *rows {
            assert!(seen.insert((*ty, *f)), "{ty}.{f} has two rows");
        }
    }
}

#[test]
fn the_fields_issue_11_names_are_reported() {
    for (ty, f) in [
        ("TrafficPolicy", "outlierDetection"),
        ("LoadBalancerSettings", "consistentHash"),
        ("LoadBalancerSettings", "localityLbSetting"),
        ("ConnectionPoolSettings", "http"),
        ("TcpSettings", "maxConnections"),
    ] {
        assert!(
            matches!(support(ty, f), Some(Support::NotImplemented { .. })),
            "{ty}.{f}"
        );
    }
    assert_eq!(
        support("TcpSettings", "idleTimeout"),
        Some(Support::Implemented)
    );
    let ignored: Vec<&str> = RETRY_ON
        .iter()
        .filter(|t| !t.implemented)
        .map(|t| t.name)
        .collect();
    assert_eq!(
        ignored,
        [
            "envoy-ratelimited",
            "retriable-headers",
            "http3-post-connect-failure"
        ]
    );
}

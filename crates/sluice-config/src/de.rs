//! serde over a located YAML tree. Errors carry the path and position of the offending node, and
//! an unknown field is refused with the closest known name as a suggestion, as the Kubernetes API
//! server's strict schema would refuse it.
use crate::yaml::{Node, Pos, Seg, Value};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub help: Option<String>,
    /// Where it went wrong; empty until the failing node is known.
    pub path: Vec<Seg>,
    pub at: Option<(Pos, Pos)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        let message = msg.to_string();
        // Errors of our own value types put a suggestion after "; did you mean".
        let (message, help) = match message.split_once("; did you mean ") {
            Some((m, s)) => (m.to_string(), Some(format!("did you mean {s}"))),
            None => (message, None),
        };
        DeError {
            message,
            help,
            path: Vec::new(),
            at: None,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown value \"{variant}\""),
            help: Some(suggestion(variant, expected)),
            path: Vec::new(),
            at: None,
        }
    }
}

/// "did you mean X?" when a known name is close, else the list of known names.
pub fn suggestion(given: &str, known: &[&str]) -> String {
    let lower = given.to_ascii_lowercase();
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_ascii_lowercase()), *k))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, k)) if score >= 0.8 => format!("did you mean \"{k}\"?"),
        _ => format!("expected one of: {}", known.join(", ")),
    }
}

/// A path from the document root, built on the stack as the deserializer descends.
#[derive(Clone, Copy)]
enum PathLink<'p> {
    Root,
    Key(&'p PathLink<'p>, &'p str),
    Index(&'p PathLink<'p>, usize),
}

impl PathLink<'_> {
    fn to_vec(self) -> Vec<Seg> {
        let mut out = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                PathLink::Root => break,
                PathLink::Key(parent, k) => {
                    out.push(Seg::Key(k.to_string()));
                    cur = *parent;
                }
                PathLink::Index(parent, i) => {
                    out.push(Seg::Index(i));
                    cur = *parent;
                }
            }
        }
        out.reverse();
        out
    }
}

/// A field set (not null) in the input, as serde saw it: the Rust type being filled, the
/// field's name, its path from the document root and the position of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSeen {
    pub ty: &'static str,
    pub field: &'static str,
    pub path: Vec<Seg>,
    pub at: (Pos, Pos),
}

/// Deserializes `T` from `node`, whose own path in the document is `base`.
pub fn from_node<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &[Seg],
) -> Result<T, DeError> {
    decode_with(node, base, None)
}

/// As `from_node`, also listing every field present (for the field-support table).
pub fn from_node_recording<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &[Seg],
    seen: &mut Vec<FieldSeen>,
) -> Result<T, DeError> {
    let cell = RefCell::new(Vec::new());
    let r = decode_with(node, base, Some(&cell));
    seen.extend(cell.into_inner().into_iter().map(|mut f| {
        let mut full = base.to_vec();
        full.append(&mut f.path);
        f.path = full;
        f
    }));
    r
}

fn decode_with<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &[Seg],
    seen: Option<&RefCell<Vec<FieldSeen>>>,
) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: &PathLink::Root,
        seen,
    })
    .map_err(|mut e| {
        let mut full = base.to_vec();
        full.append(&mut e.path);
        e.path = full;
        e
    })
}

struct NodeDe<'de, 'p> {
    node: &'de Node,
    path: &'p PathLink<'p>,
    seen: Option<&'p RefCell<Vec<FieldSeen>>>,
}

impl<'de> NodeDe<'de, '_> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some((self.node.start, self.node.end));
            e.path = self.path.to_vec();
        }
        e
    }

    fn unexpected(&self) -> de::Unexpected<'de> {
        match &self.node.value {
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
            Value::Scalar { .. } if self.node.is_null() => de::Unexpected::Unit,
            Value::Scalar { .. } => {
                if let Some(b) = self.node.as_bool() {
                    de::Unexpected::Bool(b)
                } else if let Some(i) = self.node.as_i64() {
                    de::Unexpected::Signed(i)
                } else if let Some(f) = self.node.as_f64() {
                    de::Unexpected::Float(f)
                } else {
                    de::Unexpected::Str(self.node.as_str().unwrap_or(""))
                }
            }
        }
    }

    fn type_error(&self, exp: &dyn de::Expected) -> DeError {
        self.locate(de::Error::invalid_type(self.unexpected(), exp))
    }

    fn scalar_text(&self) -> Option<&'de str> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.node.is_null() => Some(text.as_str()),
            _ => None,
        }
    }
}

macro_rules! int_method {
    ($method:ident) => {
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            match self.node.as_i64() {
                Some(i) => v.visit_i64(i).map_err(|e| self.locate(e)),
                None => Err(self.type_error(&v)),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Seq(items) => v.visit_seq(SeqAcc {
                items: items.iter().enumerate(),
                path: self.path,
                seen: self.seen,
            }),
            Value::Map(entries) => v.visit_map(MapAcc {
                entries: entries.iter(),
                value: None,
                path: self.path,
                seen: self.seen,
            }),
            Value::Scalar { text, .. } => {
                if self.node.is_null() {
                    v.visit_unit()
                } else if let Some(b) = self.node.as_bool() {
                    v.visit_bool(b)
                } else if let Some(i) = self.node.as_i64() {
                    v.visit_i64(i)
                } else if let Some(f) = self.node.as_f64() {
                    v.visit_f64(f)
                } else {
                    v.visit_borrowed_str(text)
                }
            }
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.as_bool() {
            Some(b) => v.visit_bool(b),
            None => Err(self.type_error(&v)),
        }
    }

    int_method!(deserialize_i8);
    int_method!(deserialize_i16);
    int_method!(deserialize_i32);
    int_method!(deserialize_i64);
    int_method!(deserialize_u8);
    int_method!(deserialize_u16);
    int_method!(deserialize_u32);
    int_method!(deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.as_f64() {
            Some(f) => v.visit_f64(f).map_err(|e| self.locate(e)),
            None => Err(self.type_error(&v)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.scalar_text() {
            Some(text) => v.visit_borrowed_str(text).map_err(|e| self.locate(e)),
            None => Err(self.type_error(&v)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_unit()
        } else {
            Err(self.type_error(&v))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let items: &'de [Node] = match &self.node.value {
            Value::Seq(items) => items,
            // Kubernetes treats `field:` (null) like an absent list.
            _ if self.node.is_null() => &[],
            _ => return Err(self.type_error(&v)),
        };
        v.visit_seq(SeqAcc {
            items: items.iter().enumerate(),
            path: self.path,
            seen: self.seen,
        })
        .map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let entries: &'de [(Node, Node)] = match &self.node.value {
            Value::Map(entries) => entries,
            _ if self.node.is_null() => &[],
            _ => return Err(self.type_error(&v)),
        };
        v.visit_map(MapAcc {
            entries: entries.iter(),
            value: None,
            path: self.path,
            seen: self.seen,
        })
        .map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        ty: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        if let Value::Map(entries) = &self.node.value {
            for (key, value) in entries {
                let name = key.as_str().unwrap_or("");
                let known = fields.iter().find(|f| **f == name);
                if let (Some(seen), Some(field)) = (self.seen, known) {
                    if !value.is_null() {
                        let mut path = self.path.to_vec();
                        path.push(Seg::Key(name.to_string()));
                        seen.borrow_mut().push(FieldSeen {
                            ty,
                            field,
                            path,
                            at: (key.start, key.end),
                        });
                    }
                }
                if known.is_none() {
                    return Err(DeError {
                        message: format!("unknown field \"{name}\""),
                        help: Some(suggestion(name, fields)),
                        path: {
                            let mut p = self.path.to_vec();
                            p.push(Seg::Key(name.to_string()));
                            p
                        },
                        at: Some((key.start, key.end)),
                    });
                }
            }
        }
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.scalar_text() {
            Some(text) => v
                .visit_enum(IntoDeserializer::<DeError>::into_deserializer(text))
                .map_err(|e| self.locate(e)),
            None => Err(self.type_error(&v)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct SeqAcc<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    path: &'p PathLink<'p>,
    seen: Option<&'p RefCell<Vec<FieldSeen>>>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = PathLink::Index(self.path, i);
                seed.deserialize(NodeDe {
                    node,
                    path: &path,
                    seen: self.seen,
                })
                .map(Some)
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'de, 'p> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<(&'de Node, &'de Node)>,
    path: &'p PathLink<'p>,
    seen: Option<&'p RefCell<Vec<FieldSeen>>>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some((k, v));
                let key_text = k.as_str().unwrap_or("");
                let path = PathLink::Key(self.path, key_text);
                seed.deserialize(NodeDe {
                    node: k,
                    path: &path,
                    seen: self.seen,
                })
                .map(Some)
            }
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value requested before key"))?;
        let path = PathLink::Key(self.path, k.as_str().unwrap_or(""));
        seed.deserialize(NodeDe {
            node: v,
            path: &path,
            seen: self.seen,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{parse, path_to_string};
    use sluice_api::istio::VirtualServiceSpec;

    fn spec_err(src: &str) -> DeError {
        let (docs, errs) = parse(src);
        assert!(errs.is_empty(), "{errs:?}");
        from_node::<VirtualServiceSpec>(&docs[0].root, &[Seg::Key("spec".into())]).unwrap_err()
    }

    #[test]
    fn unknown_field_suggests_closest() {
        let e = spec_err("hosts: [a]\nhttp:\n- route: []\n  timout: 5s\n");
        assert_eq!(e.message, "unknown field \"timout\"");
        assert_eq!(e.help.as_deref(), Some("did you mean \"timeout\"?"));
        assert_eq!(path_to_string(&e.path), "spec.http[0].timout");
        assert_eq!(e.at.unwrap().0, Pos { line: 4, col: 3 });
    }

    #[test]
    fn bad_duration_points_at_value() {
        let e = spec_err("http:\n- timeout: 3 seconds\n");
        assert!(e.message.starts_with("invalid duration"), "{}", e.message);
        assert_eq!(e.help.as_deref(), Some("did you mean \"3s\"?"));
        assert_eq!(e.at.unwrap().0, Pos { line: 2, col: 12 });
        assert_eq!(path_to_string(&e.path), "spec.http[0].timeout");
    }

    #[test]
    fn wrong_type_is_located() {
        let e = spec_err("http:\n- route:\n  - destination: {host: a, port: {number: http}}\n");
        assert!(e.message.contains("expected u32"), "{}", e.message);
        assert_eq!(
            path_to_string(&e.path),
            "spec.http[0].route[0].destination.port.number"
        );
    }

    #[test]
    fn null_lists_are_empty() {
        let (docs, _) = parse("hosts:\nhttp: ~\n");
        let spec: VirtualServiceSpec = from_node(&docs[0].root, &[]).unwrap();
        assert!(spec.hosts.is_empty() && spec.http.is_empty());
    }
}

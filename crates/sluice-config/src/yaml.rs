//! A YAML document as a tree of nodes that remember where they stood in the file. Everything that
//! reports an error about configuration finds its line and column here.
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A position in a file, both 1-based (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: Pos,
    pub end: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Kept as written; typed on demand (YAML 1.2 core schema for plain scalars).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// One step of a path into a document: `spec.http[1].timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub fn path_to_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        let Value::Scalar { text, plain: true } = &self.value else {
            return None;
        };
        let (neg, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
            i64::from_str_radix(hex, 16).ok()?
        } else if let Some(oct) = digits.strip_prefix("0o") {
            i64::from_str_radix(oct, 8).ok()?
        } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()?
        } else {
            return None;
        };
        Some(if neg { -magnitude } else { magnitude })
    }

    pub fn as_f64(&self) -> Option<f64> {
        if let Some(i) = self.as_i64() {
            return Some(i as f64);
        }
        let Value::Scalar { text, plain: true } = &self.value else {
            return None;
        };
        match text.as_str() {
            ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
            "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
            t if t.bytes().any(|b| b.is_ascii_digit())
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
            {
                t.parse().ok()
            }
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The deepest node along `path` (as far as the path exists).
    pub fn lookup(&self, path: &[Seg]) -> &Node {
        let mut node = self;
        for seg in path {
            let next = match (seg, &node.value) {
                (Seg::Key(k), _) => node.get(k),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Like `lookup`, but a final key segment resolves to the key itself (for "unknown field").
    pub fn lookup_key(&self, path: &[Seg]) -> &Node {
        if let Some((Seg::Key(k), parent)) = path.split_last() {
            let p = self.lookup(parent);
            if let Some((key, _)) = p.entry(k) {
                return key;
            }
        }
        self.lookup(path)
    }

    /// Removes the node at `path` (a key from its mapping; a sequence item is emptied so later
    /// indices keep their meaning). Used to recover after a schema error and find the next one.
    pub fn remove(&mut self, path: &[Seg]) -> bool {
        let Some((last, parent_path)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for seg in parent_path {
            let next = match (seg, &mut node.value) {
                (Seg::Key(k), Value::Map(entries)) => entries
                    .iter_mut()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(_, v)| v),
                (Seg::Index(i), Value::Seq(items)) => items.get_mut(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        match (last, &mut node.value) {
            (Seg::Key(k), Value::Map(entries)) => {
                let before = entries.len();
                entries.retain(|(key, _)| key.as_str() != Some(k));
                before != entries.len()
            }
            (Seg::Index(i), Value::Seq(items)) if *i < items.len() => {
                let item = &mut items[*i];
                let empty = match item.value {
                    Value::Map(_) => Value::Map(Vec::new()),
                    _ => Value::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                };
                if item.value == empty {
                    return false;
                }
                item.value = empty;
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Node,
}

/// A problem in the YAML text itself.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Deeper nesting than any Kubernetes object needs; the limit keeps hostile input from
/// exhausting the stack.
const MAX_DEPTH: usize = 128;
/// Bounds alias expansion ("billion laughs").
const MAX_NODES: usize = 5_000_000;

fn pos(m: &saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

enum Frame {
    Seq {
        start: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Parses every document of a YAML (or JSON) text. Documents before a syntax error are kept;
/// the error, if any, is returned beside them. Duplicate keys are reported as errors too.
pub fn parse(text: &str) -> (Vec<Document>, Vec<YamlError>) {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut parser = Parser::new_from_str(text);

    while let Some(next) = parser.next_event() {
        let (event, span): (Event, Span) = match next {
            Ok(ev) => ev,
            Err(e) => {
                errors.push(YamlError {
                    pos: pos(e.marker()),
                    message: e.info().to_string(),
                });
                return (docs, errors);
            }
        };
        let start = pos(&span.start);
        let end = pos(&span.end);
        let done = match event {
            Event::StreamStart | Event::Nothing | Event::DocumentStart(_) => None,
            Event::StreamEnd => break,
            Event::DocumentEnd => {
                stack.clear();
                None
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => {
                    nodes += count(node);
                    let mut node = node.clone();
                    node.start = start;
                    node.end = end;
                    Some((node, 0))
                }
                None => {
                    errors.push(YamlError {
                        pos: start,
                        message: "alias refers to an unknown anchor".into(),
                    });
                    return (docs, errors);
                }
            },
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_str;
                Some((
                    Node {
                        start,
                        end,
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain,
                        },
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    start,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    start,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                }) => Some((
                    Node {
                        start,
                        end,
                        value: Value::Seq(items),
                    },
                    anchor,
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    start,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        start,
                        end,
                        value: Value::Map(entries),
                    },
                    anchor,
                )),
                _ => None,
            },
        };
        if stack.len() > MAX_DEPTH {
            errors.push(YamlError {
                pos: start,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
            return (docs, errors);
        }
        nodes += 1;
        if nodes > MAX_NODES {
            errors.push(YamlError {
                pos: start,
                message: format!("document expands to more than {MAX_NODES} nodes (aliases?)"),
            });
            return (docs, errors);
        }
        let Some((node, anchor)) = done else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => docs.push(Document { root: node }),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some(name) = k.as_str() {
                        if entries.iter().any(|(prev, _)| prev.as_str() == Some(name)) {
                            errors.push(YamlError {
                                pos: k.start,
                                message: format!("duplicate key \"{name}\" in the same mapping"),
                            });
                        }
                    }
                    entries.push((k, node));
                }
            },
        }
    }
    (docs, errors)
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let (docs, errs) = parse("a: 1\nb:\n  - x\n");
        assert!(errs.is_empty());
        let b = docs[0].root.get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!()
        };
        assert_eq!(items[0].start, Pos { line: 3, col: 5 });
    }

    #[test]
    fn multi_document_and_error_keeps_earlier() {
        let (docs, errs) = parse("a: 1\n---\nb: 2\n---\nc: [\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn tab_indentation_is_reported_with_line() {
        let (_, errs) = parse("a:\n\tb: 1\n");
        assert_eq!(errs[0].pos.line, 2);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let (_, errs) = parse("a: 1\na: 2\n");
        assert_eq!(errs[0].pos, Pos { line: 2, col: 1 });
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let (docs, _) = parse("a: 80\nb: '80'\nc: true\nd: ~\ne: 1.5\n");
        let r = &docs[0].root;
        assert_eq!(r.get("a").unwrap().as_i64(), Some(80));
        assert_eq!(r.get("b").unwrap().as_i64(), None);
        assert_eq!(r.get("c").unwrap().as_bool(), Some(true));
        assert!(r.get("d").unwrap().is_null());
        assert_eq!(r.get("e").unwrap().as_f64(), Some(1.5));
    }

    #[test]
    fn aliases_expand() {
        let (docs, errs) = parse("a: &x {k: v}\nb: *x\n");
        assert!(errs.is_empty());
        assert_eq!(
            docs[0].root.get("b").unwrap().get("k").unwrap().as_str(),
            Some("v")
        );
    }
}

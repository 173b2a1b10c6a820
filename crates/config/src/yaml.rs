//! YAML streams (and JSON, which is read as YAML) turned into JSON values that remember
//! the source line of every node.
//!
//! Kubernetes reads manifests as YAML into JSON before decoding them; we do the same so
//! that serde sees exactly what the API server would, while a [`LineIndex`] keeps the line
//! of every field so that a message about `spec.http[0].route[1].weight` can point at it.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::path::FieldPath;

/// One document of a YAML stream.
#[derive(Debug, Clone)]
pub struct Document {
    /// Zero-based position of the document in its stream.
    pub index: usize,
    /// One-based line where the document's content starts.
    pub line: usize,
    pub value: Value,
    pub lines: LineIndex,
}

/// Where each node of a document starts, keyed by its field path.
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// The line of `path`, or of its nearest ancestor that the document spells out
    /// (a missing required field is reported where its parent is).
    pub fn line_of(&self, path: &FieldPath) -> Option<usize> {
        let segments = path.segments();
        (0..=segments.len())
            .rev()
            .find_map(|n| self.lines.get(&join(&segments[..n])).copied())
    }

    /// The index of the subtree at `prefix`, re-rooted (used for `kind: List` items and
    /// for YAML embedded in a string, such as the `mesh` key of the `istio` ConfigMap).
    pub fn subtree(&self, prefix: &FieldPath) -> LineIndex {
        let p = join(&prefix.segments());
        let lines = self
            .lines
            .iter()
            .filter_map(|(k, v)| {
                if p.is_empty() {
                    Some((k.clone(), *v))
                } else if k == &p {
                    Some((String::new(), *v))
                } else {
                    k.strip_prefix(&p)
                        .and_then(|rest| rest.strip_prefix(SEP))
                        .map(|rest| (rest.to_string(), *v))
                }
            })
            .collect();
        LineIndex { lines }
    }

    /// Shifts every line by `offset` (for YAML embedded in a string of another document).
    pub fn shifted(mut self, offset: usize) -> LineIndex {
        for v in self.lines.values_mut() {
            *v += offset;
        }
        self
    }

    /// An index that knows a single line for everything (JSON fallback).
    pub fn flat(line: usize) -> LineIndex {
        let mut lines = HashMap::new();
        lines.insert(String::new(), line);
        LineIndex { lines }
    }
}

const SEP: char = '\u{1f}';

fn join(segments: &[String]) -> String {
    let mut s = String::new();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            s.push(SEP);
        }
        s.push_str(seg);
    }
    s
}

/// A YAML syntax error, with the one-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Everything read from one stream: the documents that parsed, and the first syntax
/// error (YAML cannot be resynchronised after one, so reading stops there).
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Document>,
    pub errors: Vec<SyntaxError>,
}

/// Parses a multi-document YAML (or JSON) stream.
pub fn parse_stream(text: &str) -> Stream {
    let mut builder = Builder {
        src: text.chars().collect(),
        ..Default::default()
    };
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut builder, true);
    let mut stream = Stream {
        documents: builder.documents,
        errors: builder.errors,
    };
    if let Err(e) = result {
        // A scan error: keep what parsed before it, drop the partial document.
        stream.errors.push(SyntaxError {
            line: e.marker().line().max(1),
            message: e.info().to_string(),
        });
    }
    stream
}

enum Frame {
    Map {
        map: Map<String, Value>,
        pending_key: Option<String>,
        anchor: usize,
        path: Vec<String>,
        /// Where the mapping started, to recognise a `[key:]` pair (see `glued`).
        start: usize,
        /// A single-pair mapping inside a flow sequence whose key was written with its
        /// `:` glued to the closing `]` or `,` (`[2001:db8::]`). Go's YAML reader, which
        /// Kubernetes and Istio use, reads that as one string; so do we.
        glued: Option<String>,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
        path: Vec<String>,
    },
}

#[derive(Default)]
struct Builder {
    /// The source as characters (yaml-rust2 markers count characters).
    src: Vec<char>,
    documents: Vec<Document>,
    errors: Vec<SyntaxError>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
    doc_line: usize,
    root: Option<Value>,
}

impl Builder {
    /// Path of the node about to be produced at the top of the stack, or `None` when
    /// the next scalar is a mapping key.
    fn next_path(&self) -> Option<Vec<String>> {
        match self.stack.last() {
            None => Some(Vec::new()),
            Some(Frame::Map {
                pending_key: None, ..
            }) => None,
            Some(Frame::Map {
                pending_key: Some(k),
                path,
                ..
            }) => {
                let mut p = path.clone();
                p.push(k.clone());
                Some(p)
            }
            Some(Frame::Seq { items, path, .. }) => {
                let mut p = path.clone();
                p.push(items.len().to_string());
                Some(p)
            }
        }
    }

    fn push_value(&mut self, value: Value, line: usize) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                map, pending_key, ..
            }) => match pending_key.take() {
                Some(key) if key == "<<" => merge_into(map, value),
                Some(key) => {
                    if map.contains_key(&key) {
                        self.errors.push(SyntaxError {
                            line,
                            message: format!("mapping key {key:?} already defined"),
                        });
                    }
                    map.insert(key, value);
                }
                None => match value {
                    Value::String(s) => *pending_key = Some(s),
                    other => *pending_key = Some(other.to_string()),
                },
            },
        }
    }

    /// Marks the open mapping when `key` (a plain scalar starting at `start`) is the first
    /// key of an implicit pair in a flow sequence and its `:` touches `]` or `,`.
    fn note_glued_key(&mut self, key: &str, start: usize) {
        let in_seq = matches!(
            self.stack
                .len()
                .checked_sub(2)
                .and_then(|i| self.stack.get(i)),
            Some(Frame::Seq { .. })
        );
        let src = &self.src;
        if let Some(Frame::Map {
            map,
            start: map_start,
            glued,
            ..
        }) = self.stack.last_mut()
        {
            let end = start + key.chars().count();
            let touches =
                src.get(end) == Some(&':') && matches!(src.get(end + 1), Some(']') | Some(','));
            // yaml-rust2 marks an implicit flow pair's mapping after its key; an explicit `{`
            // starts before it.
            if in_seq && map.is_empty() && *map_start > start && touches {
                *glued = Some(key.to_string());
            }
        }
    }

    fn record(&mut self, path: Option<Vec<String>>, line: usize) {
        if let Some(p) = path {
            self.lines.entry(join(&p)).or_insert(line);
        }
    }
}

/// YAML merge keys (`<<: *base`): keys already present win.
fn merge_into(map: &mut Map<String, Value>, value: Value) {
    let sources = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        if let Value::Object(m) = source {
            for (k, v) in m {
                map.entry(k).or_insert(v);
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // yaml-rust2 lines are 1-based already.
        let line = mark.line().max(1);
        match ev {
            Event::DocumentStart => {
                self.doc_line = line;
                self.lines.clear();
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Value::Null);
                let index = self.documents.len();
                self.documents.push(Document {
                    index,
                    line: self.doc_line,
                    value,
                    lines: LineIndex {
                        lines: std::mem::take(&mut self.lines),
                    },
                });
            }
            Event::Scalar(text, style, anchor, tag) => {
                let path = self.next_path();
                let is_key = path.is_none();
                if is_key && style == TScalarStyle::Plain {
                    self.note_glued_key(&text, mark.index());
                }
                self.record(path, line);
                let value = if is_key {
                    // A mapping key is always a string in JSON.
                    Value::String(text)
                } else {
                    resolve_scalar(text, style, tag.as_ref().map(|t| t.suffix.as_str()))
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, line);
            }
            Event::Alias(id) => {
                let path = self.next_path();
                self.record(path, line);
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push_value(value, line);
            }
            Event::MappingStart(anchor, _) => {
                let path = self.next_path();
                match path {
                    Some(p) => {
                        self.record(Some(p.clone()), line);
                        self.stack.push(Frame::Map {
                            map: Map::new(),
                            pending_key: None,
                            anchor,
                            path: p,
                            start: mark.index(),
                            glued: None,
                        });
                    }
                    None => {
                        self.errors.push(SyntaxError {
                            line,
                            message: "a mapping cannot be used as a mapping key".into(),
                        });
                        self.stack.push(Frame::Map {
                            map: Map::new(),
                            pending_key: None,
                            anchor,
                            path: vec!["?".into()],
                            start: mark.index(),
                            glued: None,
                        });
                    }
                }
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path();
                let p = match path {
                    Some(p) => p,
                    None => {
                        self.errors.push(SyntaxError {
                            line,
                            message: "a sequence cannot be used as a mapping key".into(),
                        });
                        vec!["?".into()]
                    }
                };
                self.record(Some(p.clone()), line);
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    path: p,
                });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    map, anchor, glued, ..
                }) = self.stack.pop()
                {
                    let value = match glued {
                        Some(key) if map.len() == 1 && map.get(&key) == Some(&Value::Null) => {
                            Value::String(format!("{key}:"))
                        }
                        _ => Value::Object(map),
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.push_value(value, line);
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor, .. }) = self.stack.pop() {
                    let value = Value::Array(items);
                    if anchor > 0 {
                        self.anchors.insert(anchor, value.clone());
                    }
                    self.push_value(value, line);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// Resolves a scalar with the YAML 1.2 core schema, as Kubernetes' YAML reader does
/// for the values that matter in manifests (quoted scalars are always strings).
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text),
        Some("int") | Some("float") => {
            return parse_number(&text).unwrap_or(Value::String(text));
        }
        Some("bool") => {
            return match text.as_str() {
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                _ => Value::String(text),
            }
        }
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => parse_number(&text).unwrap_or(Value::String(text)),
    }
}

fn parse_number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let radix = |s: &str, r: u32| -> Option<Value> {
        let n = i128::from_str_radix(s, r).ok()?;
        let n = if neg { -n } else { n };
        int_value(n)
    };
    if let Some(h) = digits.strip_prefix("0x") {
        return radix(h, 16);
    }
    if let Some(o) = digits.strip_prefix("0o") {
        return radix(o, 8);
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return radix(digits, 10);
    }
    // Floats: digits with a dot or exponent; YAML's .inf/.nan have no JSON form and
    // stay strings so that a numeric field reports them.
    let looks_float = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if looks_float {
        let f: f64 = t.parse().ok()?;
        return Number::from_f64(f).map(Value::Number);
    }
    None
}

fn int_value(n: i128) -> Option<Value> {
    if let Ok(i) = i64::try_from(n) {
        Some(Value::Number(i.into()))
    } else if let Ok(u) = u64::try_from(n) {
        Some(Value::Number(u.into()))
    } else {
        Number::from_f64(n as f64).map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> FieldPath {
        FieldPath::parse(s)
    }

    #[test]
    fn documents_values_and_lines() {
        let s = parse_stream(
            "a: 1\nb:\n  - x: \"80\"\n    y: true\n  - z: 1.5\n---\n# c\n---\nkind: K\n",
        );
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.documents.len(), 3);
        let d = &s.documents[0];
        assert_eq!(
            d.value,
            json!({"a": 1, "b": [{"x": "80", "y": true}, {"z": 1.5}]})
        );
        assert_eq!(d.lines.line_of(&path("a")), Some(1));
        assert_eq!(d.lines.line_of(&path("b[0].y")), Some(4));
        assert_eq!(d.lines.line_of(&path("b[1].z")), Some(5));
        // Missing field: nearest ancestor.
        assert_eq!(d.lines.line_of(&path("b[1].missing.deeper")), Some(5));
        assert_eq!(s.documents[1].value, Value::Null);
        assert_eq!(s.documents[2].lines.line_of(&path("kind")), Some(9));
    }

    #[test]
    fn scalars_resolve_like_kubernetes() {
        let s = parse_stream("a: 0x10\nb: '1'\nc: ~\nd: -3\ne: 1e3\nf: 80:90\ng: !!str 5\n");
        assert_eq!(
            s.documents[0].value,
            json!({"a": 16, "b": "1", "c": null, "d": -3, "e": 1000.0, "f": "80:90", "g": "5"})
        );
    }

    #[test]
    fn ipv6_in_flow_sequences_reads_like_go_yaml() {
        let s = parse_stream("a: [1.2.3.4, 001:db8::]\nb: [x:, y: 1]\nc: [{k: }]\n");
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(
            s.documents[0].value,
            json!({"a": ["1.2.3.4", "001:db8::"], "b": ["x:", {"y": 1}], "c": [{"k": null}]})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let s = parse_stream("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nref: *b\n");
        assert_eq!(
            s.documents[0].value,
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "ref": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_reported() {
        let s = parse_stream("a: 1\na: 2\n");
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].line, 2);
        let s = parse_stream("a: 1\n---\nb: [1, 2\nc: 3\n");
        assert_eq!(s.documents.len(), 1);
        assert_eq!(s.errors.len(), 1);
    }

    #[test]
    fn json_is_yaml() {
        let s =
            parse_stream("{\"kind\": \"Service\",\n \"spec\": {\"ports\": [{\"port\": 80}]}}\n");
        assert!(s.errors.is_empty());
        assert_eq!(
            s.documents[0].value,
            json!({"kind":"Service","spec":{"ports":[{"port":80}]}})
        );
        assert_eq!(
            s.documents[0].lines.line_of(&path("spec.ports[0].port")),
            Some(2)
        );
    }

    #[test]
    fn subtree_rebases_paths() {
        let s = parse_stream("items:\n- kind: A\n  spec:\n    x: 1\n");
        let sub = s.documents[0].lines.subtree(&path("items[0]"));
        assert_eq!(sub.line_of(&path("spec.x")), Some(4));
        assert_eq!(sub.line_of(&path("kind")), Some(2));
    }
}

//! Envoy's substitution format strings: `%OPERATOR%`, `%OPERATOR(arg)%`,
//! `%OPERATOR(arg):N%`, compiled once per listener config and rendered per stream,
//! as TEXT lines or JSON objects (`json_format`, typed values).

use std::borrow::Cow;
use std::fmt::Write;

use super::{ResponseFlags, StreamInfo};

pub mod ops;

pub use ops::Op;

/// A format string or dictionary the proxy cannot honour; the text names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// One operator's value for one stream, typed as Envoy types it in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Not available: `-` in TEXT, `null` in JSON.
    Missing,
    Str(Cow<'a, str>),
    Num(u64),
}

/// A parsed operator with its optional `:N` truncation.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub op: Op,
    pub max_len: Option<usize>,
}

impl Command {
    fn value<'a>(&self, info: &'a StreamInfo) -> Value<'a> {
        match self.op.value(info) {
            Value::Str(s) => match self.max_len {
                Some(n) if s.chars().count() > n => {
                    Value::Str(Cow::Owned(s.chars().take(n).collect()))
                }
                _ => Value::Str(s),
            },
            v => v,
        }
    }
}

/// A piece of a TEXT template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Lit(String),
    Cmd(Command),
}

/// A compiled template: literal text and operators.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub pieces: Vec<Piece>,
}

impl Template {
    /// Parses Envoy's format-string syntax; `Err` names the offending operator.
    pub fn parse(s: &str) -> Result<Template, FormatError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'%' {
                let next = s[i..].find('%').map_or(s.len(), |p| i + p);
                lit.push_str(&s[i..next]);
                i = next;
                continue;
            }
            // Envoy accepts `%%` as a literal percent sign.
            if bytes.get(i + 1) == Some(&b'%') {
                lit.push('%');
                i += 2;
                continue;
            }
            let (cmd, end) = parse_command(s, i)?;
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Cmd(cmd));
            i = end;
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    /// The single operator when the template is exactly one (JSON keeps its type).
    fn single(&self) -> Option<&Command> {
        match self.pieces.as_slice() {
            [Piece::Cmd(c)] => Some(c),
            _ => None,
        }
    }

    /// Appends the TEXT rendering; missing values are `-` (or nothing with
    /// `omit_empty_values`).
    pub fn render_into(&self, info: &StreamInfo, omit_empty: bool, out: &mut String) {
        for p in &self.pieces {
            match p {
                Piece::Lit(l) => out.push_str(l),
                Piece::Cmd(c) => match c.value(info) {
                    Value::Missing => {
                        if !omit_empty {
                            out.push('-')
                        }
                    }
                    Value::Str(s) if s.is_empty() && !omit_empty => out.push('-'),
                    Value::Str(s) => out.push_str(&s),
                    Value::Num(n) => {
                        let _ = write!(out, "{n}");
                    }
                },
            }
        }
    }
}

/// Finds the operator starting at `start` (a `%`), returns it and the index after its
/// closing `%`.
fn parse_command(s: &str, start: usize) -> Result<(Command, usize), FormatError> {
    let bytes = s.as_bytes();
    let mut i = start + 1;
    while i < bytes.len()
        && (bytes[i].is_ascii_uppercase() || bytes[i].is_ascii_digit() || bytes[i] == b'_')
    {
        i += 1;
    }
    let name = &s[start + 1..i];
    if name.is_empty() {
        return Err(FormatError(format!(
            "access log format: no command operator at position {start} of {s:?} (a literal '%' is not allowed)"
        )));
    }
    let mut arg = None;
    if bytes.get(i) == Some(&b'(') {
        let close = s[i..].find(')').map(|p| i + p).ok_or_else(|| {
            FormatError(format!(
                "access log format: unclosed '(' in %{name}( at position {start}"
            ))
        })?;
        arg = Some(&s[i + 1..close]);
        i = close + 1;
    }
    let mut max_len = None;
    if bytes.get(i) == Some(&b':') {
        let digits_end = s[i + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(s.len(), |p| i + 1 + p);
        let digits = &s[i + 1..digits_end];
        if digits.is_empty() {
            return Err(FormatError(format!(
                "access log format: %{name}: must be followed by a length, at position {start}"
            )));
        }
        max_len = Some(digits.parse::<usize>().map_err(|e| {
            FormatError(format!(
                "access log format: bad length {digits:?} for %{name}: {e}"
            ))
        })?);
        i = digits_end;
    }
    if bytes.get(i) != Some(&b'%') {
        return Err(FormatError(format!(
            "access log format: %{name} at position {start} is not closed by '%'"
        )));
    }
    if max_len.is_some() && !ops::allows_length(name) {
        return Err(FormatError(format!(
            "access log format: %{name}% does not take a length (only header, metadata and filter-state operators do)"
        )));
    }
    let op = Op::parse(name, arg)?;
    Ok((Command { op, max_len }, i + 1))
}

/// A JSON dictionary value: nested objects, constants, or templates.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonNode {
    Object(Vec<(String, JsonNode)>),
    Template(Template),
    Const(serde_json::Value),
}

/// A compiled access-log format.
#[derive(Debug, Clone, PartialEq)]
pub enum LogFormat {
    Text {
        template: Template,
        omit_empty: bool,
    },
    Json {
        fields: Vec<(String, JsonNode)>,
        omit_empty: bool,
    },
}

/// Envoy's default when a logger names no format.
pub const ENVOY_DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

impl LogFormat {
    /// A TEXT format.
    pub fn text(s: &str, omit_empty: bool) -> Result<LogFormat, FormatError> {
        Ok(LogFormat::Text {
            template: Template::parse(s)?,
            omit_empty,
        })
    }

    /// A JSON dictionary from a `google.protobuf.Struct`.
    pub fn json(s: &prost_types::Struct, omit_empty: bool) -> Result<LogFormat, FormatError> {
        Ok(LogFormat::Json {
            fields: json_fields(s)?,
            omit_empty,
        })
    }

    /// Renders one log line, ending in `\n` for JSON (Envoy appends it) and as the
    /// template says for TEXT.
    pub fn render(&self, info: &StreamInfo) -> String {
        match self {
            LogFormat::Text {
                template,
                omit_empty,
            } => {
                let mut out = String::with_capacity(256);
                template.render_into(info, *omit_empty, &mut out);
                out
            }
            LogFormat::Json { fields, omit_empty } => {
                let mut map = serde_json::Map::with_capacity(fields.len());
                render_object(fields, info, *omit_empty, &mut map);
                let mut out = serde_json::Value::Object(map).to_string();
                out.push('\n');
                out
            }
        }
    }
}

fn json_fields(s: &prost_types::Struct) -> Result<Vec<(String, JsonNode)>, FormatError> {
    s.fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), json_node(k, v)?)))
        .collect()
}

fn json_node(key: &str, v: &prost_types::Value) -> Result<JsonNode, FormatError> {
    use prost_types::value::Kind;
    Ok(match &v.kind {
        Some(Kind::StringValue(s)) => JsonNode::Template(Template::parse(s)?),
        Some(Kind::StructValue(st)) => JsonNode::Object(json_fields(st)?),
        Some(Kind::NumberValue(n)) => JsonNode::Const(
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number),
        ),
        Some(Kind::BoolValue(b)) => JsonNode::Const(serde_json::Value::Bool(*b)),
        Some(Kind::NullValue(_)) | None => JsonNode::Const(serde_json::Value::Null),
        Some(Kind::ListValue(_)) => {
            return Err(FormatError(format!(
                "access log json_format: key {key:?} holds a list; only strings, numbers, booleans and nested objects are supported"
            )))
        }
    })
}

fn render_object(
    fields: &[(String, JsonNode)],
    info: &StreamInfo,
    omit_empty: bool,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (k, node) in fields {
        let v = match node {
            JsonNode::Object(inner) => {
                let mut m = serde_json::Map::new();
                render_object(inner, info, omit_empty, &mut m);
                serde_json::Value::Object(m)
            }
            JsonNode::Const(c) => c.clone(),
            JsonNode::Template(t) => match t.single() {
                Some(c) => match c.value(info) {
                    Value::Missing => serde_json::Value::Null,
                    Value::Str(s) => serde_json::Value::String(s.into_owned()),
                    Value::Num(n) => serde_json::Value::from(n),
                },
                None => {
                    let mut s = String::new();
                    t.render_into(info, omit_empty, &mut s);
                    serde_json::Value::String(s)
                }
            },
        };
        if omit_empty && (v.is_null() || v.as_str() == Some("")) {
            continue;
        }
        out.insert(k.clone(), v);
    }
}

/// Flags rendered for `%RESPONSE_FLAGS%`.
pub(crate) fn flags_value(f: ResponseFlags) -> Value<'static> {
    Value::Str(Cow::Owned(f.to_string()))
}

#[cfg(test)]
mod tests;

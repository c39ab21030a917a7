//! Template data and how Go prints it.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// Data a template runs on. Three kinds of records, because docker's
/// templates meet three: a JSON document's objects ([`Value::Object`]: a
/// missing key is an error, as in `docker inspect`'s fallback with
/// `missingkey=error`), Go maps ([`Value::Map`]: labels and the like; a
/// missing key is `<no value>`), and docker's formatter contexts
/// ([`Value::Struct`]: a missing field is "can't evaluate field").
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null` or Go's `nil`: prints `<no value>` at top level.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Go `time.Duration` in nanoseconds: prints as Go does (`1m30s`),
    /// marshals to JSON as the number.
    Duration(i64),
    Str(String),
    List(Vec<Value>),
    /// A Go `time.Time`, held as RFC 3339: prints as Go does (`2024-05-01
    /// 12:00:00.5 +0000 UTC`), marshals to JSON as the RFC 3339 string.
    Time(String),
    /// A Go slice that is nil (a typed struct's unset `[]string`): prints
    /// `[]` as Go does, but marshals to JSON `null`.
    NilList,
    /// A Go map: a missing key gives [`Value::Nil`].
    Map(BTreeMap<String, Value>),
    /// A JSON object standing for a Go struct: a missing key is an error.
    Object(BTreeMap<String, Value>),
    /// A Go struct: its type name (for error messages), ordered fields,
    /// and how `json` writes it.
    Struct {
        type_name: &'static str,
        fields: Vec<(String, Value)>,
        json: JsonForm,
    },
}

/// How the `json` function writes a [`Value::Struct`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonForm {
    /// A listing's context (`images`, `ps`…): docker marshals it through a
    /// map, so keys sorted, HTML escaped.
    Context,
    /// A typed document (inspect's `Config`): fields in order, those
    /// tagged `omitempty` left out when empty, as `encoding/json` does.
    Typed { omit_empty: &'static [&'static str] },
}

impl Value {
    /// A JSON document as template data: objects become [`Value::Object`]s.
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// An object as a Go map (a missing key is `<no value>`, not an
    /// error); anything else unchanged.
    pub fn into_go_map(self) -> Value {
        match self {
            Value::Object(m) => Value::Map(m),
            other => other,
        }
    }

    /// A struct of string fields, as docker's list formatters expose.
    pub fn strings(type_name: &'static str, fields: &[(&str, String)]) -> Value {
        Value::Struct {
            type_name,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Str(v.clone())))
                .collect(),
            json: JsonForm::Context,
        }
    }

    /// A typed Go struct (docker's inspect documents): `{{.Config}}`
    /// prints its fields in order, `{{json .Config}}` writes them in order
    /// without the empty `omit_empty` ones.
    pub fn typed(
        type_name: &'static str,
        fields: Vec<(String, Value)>,
        omit_empty: &'static [&'static str],
    ) -> Value {
        Value::Struct {
            type_name,
            fields,
            json: JsonForm::Typed { omit_empty },
        }
    }

    /// `encoding/json`'s empty, for `omitempty`.
    fn is_empty_for_json(&self) -> bool {
        match self {
            Value::Nil => true,
            Value::Bool(b) => !b,
            Value::Int(i) | Value::Duration(i) => *i == 0,
            Value::Float(f) => *f == 0.0,
            Value::Str(s) => s.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::NilList => true,
            Value::Time(_) => false,
            Value::Map(m) | Value::Object(m) => m.is_empty(),
            Value::Struct { .. } => false,
        }
    }

    /// Go's truth: false, 0, nil and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Duration(d) => *d != 0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::NilList => false,
            Value::Time(_) => true,
            Value::Map(m) | Value::Object(m) => !m.is_empty(),
            Value::Struct { .. } => true,
        }
    }

    /// The Go type name used in error messages.
    pub(crate) fn type_name(&self) -> &str {
        match self {
            Value::Nil => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Duration(_) => "time.Duration",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::NilList => "[]string",
            Value::Time(_) => "time.Time",
            Value::Map(_) | Value::Object(_) => "map[string]interface {}",
            Value::Struct { type_name, .. } => type_name,
        }
    }

    /// Go's `json.Marshal` (docker's `json` function): maps and structs with
    /// sorted keys (docker's contexts marshal through a map). docker's
    /// encoder turns HTML escaping off, but a listing's context marshals
    /// itself with `json.Marshal` first, which escapes `<`, `>`, `&`, U+2028
    /// and U+2029: so `{{json .}}` of an `images` row prints
    /// `"\u003cnone\u003e"` and `{{json .Tag}}` prints `"<none>"`.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        if matches!(
            self,
            Value::Struct {
                json: JsonForm::Context,
                ..
            }
        ) {
            out = go_html_escape(&out);
        }
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Nil | Value::NilList => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Duration(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
            Value::Str(s) | Value::Time(s) => {
                out.push_str(&serde_json::Value::from(s.as_str()).to_string())
            }
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Map(_) | Value::Object(_) | Value::Struct { .. } => {
                let entries: Vec<(&str, &Value)> = match self {
                    Value::Map(m) | Value::Object(m) => {
                        m.iter().map(|(k, v)| (k.as_str(), v)).collect()
                    }
                    Value::Struct {
                        fields,
                        json: JsonForm::Typed { omit_empty },
                        ..
                    } => fields
                        .iter()
                        .filter(|(k, v)| {
                            !(omit_empty.contains(&k.as_str()) && v.is_empty_for_json())
                        })
                        .map(|(k, v)| (k.as_str(), v))
                        .collect(),
                    Value::Struct { fields, .. } => {
                        let sorted: BTreeMap<&str, &Value> =
                            fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
                        sorted.into_iter().collect()
                    }
                    _ => Vec::new(),
                };
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(k).to_string());
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// Go's `%v` of a value nested in a list, map or struct.
    fn write_nested(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            other => write!(f, "{other}"),
        }
    }
}

/// Go's `%v`, as text/template prints a pipeline's value.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<no value>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&go_float(*x)),
            Value::Duration(d) => f.write_str(&kiln_core::gofmt::duration(*d)),
            Value::Str(s) => f.write_str(s),
            Value::NilList => f.write_str("[]"),
            Value::Time(t) => f.write_str(&go_time(t)),
            Value::List(l) => {
                f.write_char('[')?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    v.write_nested(f)?;
                }
                f.write_char(']')
            }
            Value::Map(m) | Value::Object(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    write!(f, "{k}:")?;
                    v.write_nested(f)?;
                }
                f.write_char(']')
            }
            Value::Struct { fields, .. } => {
                f.write_char('{')?;
                for (i, (_, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    v.write_nested(f)?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Go's `time.Time` printing of an RFC 3339 UTC time; the zero time for
/// what does not parse (docker's `0001-01-01T00:00:00Z`).
fn go_time(rfc3339: &str) -> String {
    match kiln_core::parse_rfc3339(rfc3339) {
        Some(t) => {
            let text = kiln_core::rfc3339(t);
            let (date, clock) = text.split_once('T').unwrap_or((&text, "00:00:00Z"));
            format!("{date} {} +0000 UTC", clock.trim_end_matches('Z'))
        }
        None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(x, 'g', -1, 64)`):
/// exponent form from 1e21 up and below 1e-4.
fn go_float(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{x:e}");
        // Rust writes 1e21 / 1.5e-5; Go writes 1e+21 / 1.5e-05.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{x}")
}

/// Go's `encoding/json` escaping of `<`, `>`, `&`, U+2028 and U+2029 in
/// JSON text (those characters occur in JSON text only inside strings).
pub(crate) fn go_html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

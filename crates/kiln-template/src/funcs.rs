//! text/template's builtin functions and the ones docker adds.

use crate::exec::State;
use crate::Value;

pub(crate) enum Fail {
    Unknown,
    /// "error calling NAME: …"
    Call(String),
    /// A wrong number or type of arguments.
    Args(String),
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), Fail> {
    if args.len() != n {
        return Err(Fail::Args(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn string(name: &str, v: &Value) -> Result<String, Fail> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(Fail::Args(format!(
            "wrong type for value; expected string; got {} (in {name})",
            other.type_name()
        ))),
    }
}

fn int(name: &str, v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Fail::Args(format!(
            "wrong type for value; expected int; got {} (in {name})",
            other.type_name()
        ))),
    }
}

pub(crate) fn call(s: &State<'_>, name: &str, args: &[Value]) -> Result<Value, Fail> {
    // docker's header functions: a `table` header row runs the template on
    // header names, and these return the name unchanged.
    if s.header
        && matches!(
            name,
            "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
        )
    {
        return Ok(args.first().cloned().unwrap_or(Value::Nil));
    }
    Ok(match name {
        "and" => args
            .iter()
            .find(|v| !v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "or" => args
            .iter()
            .find(|v| v.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Nil),
        "not" => {
            want(name, args, 1)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            want(name, args, 1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::NilList => 0,
                Value::Map(m) | Value::Object(m) => m.len(),
                other => return Err(Fail::Call(format!("len of type {}", other.type_name()))),
            } as i64)
        }
        "index" => index(args)?,
        "print" => Value::Str(sprint(args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::to_string).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return Err(Fail::Args(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ));
            };
            Value::Str(printf(&string(name, f)?, rest))
        }
        "eq" => {
            let Some((first, rest)) = args.split_first() else {
                return Err(Fail::Call("missing argument for comparison".into()));
            };
            Value::Bool(rest.iter().any(|v| equal(first, v)))
        }
        "ne" => {
            want(name, args, 2)?;
            Value::Bool(!equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, args, 2)?;
            let ord = compare(&args[0], &args[1])
                .ok_or_else(|| Fail::Call("incompatible types for comparison".into()))?;
            Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "json" => {
            want(name, args, 1)?;
            let compact = args[0].to_json();
            match s.json_indent() {
                None => Value::Str(compact),
                Some(indent) => {
                    let indented = kiln_core::gofmt::json_indent(compact.as_bytes(), "", indent)
                        .unwrap_or(compact);
                    Value::Str(crate::value::go_html_escape(&indented))
                }
            }
        }
        "join" => {
            want(name, args, 2)?;
            let items: &[Value] = match &args[0] {
                Value::List(items) => items,
                Value::NilList => &[],
                other => {
                    return Err(Fail::Args(format!(
                        "wrong type for value; expected []string; got {}",
                        other.type_name()
                    )))
                }
            };
            let parts: Vec<String> = items.iter().map(Value::to_string).collect();
            Value::Str(parts.join(&string(name, &args[1])?))
        }
        "split" => {
            want(name, args, 2)?;
            let (text, sep) = (string(name, &args[0])?, string(name, &args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                text.split(sep.as_str())
                    .map(|p| Value::Str(p.to_string()))
                    .collect()
            };
            Value::List(parts)
        }
        "title" => {
            want(name, args, 1)?;
            Value::Str(title(&string(name, &args[0])?))
        }
        "lower" => {
            want(name, args, 1)?;
            Value::Str(string(name, &args[0])?.to_lowercase())
        }
        "upper" => {
            want(name, args, 1)?;
            Value::Str(string(name, &args[0])?.to_uppercase())
        }
        "pad" => {
            want(name, args, 3)?;
            let text = string(name, &args[0])?;
            let (pre, post) = (int(name, &args[1])?, int(name, &args[2])?);
            // Capped: a typo of a few digits must not exhaust memory.
            let spaces = |n: i64| " ".repeat(n.clamp(0, 1 << 20) as usize);
            Value::Str(format!("{}{text}{}", spaces(pre), spaces(post)))
        }
        "truncate" => {
            want(name, args, 2)?;
            let text = string(name, &args[0])?;
            let n = int(name, &args[1])?.max(0) as usize;
            // docker cuts bytes; cutting on a char boundary avoids a panic.
            let cut = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .take_while(|&i| i <= n)
                .last()
                .unwrap_or(0);
            Value::Str(text[..cut].to_string())
        }
        _ => return Err(Fail::Unknown),
    })
}

/// Go's `strings.Title`: the first letter of each space-separated word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    out
}

fn index(args: &[Value]) -> Result<Value, Fail> {
    let Some((first, keys)) = args.split_first() else {
        return Err(Fail::Args(
            "wrong number of args for index: want at least 1 got 0".into(),
        ));
    };
    let mut v = first.clone();
    for k in keys {
        v = match (&v, k) {
            (Value::List(l), Value::Int(i)) => {
                let Some(x) = usize::try_from(*i).ok().and_then(|i| l.get(i)) else {
                    return Err(Fail::Call(format!("index out of range: {i}")));
                };
                x.clone()
            }
            (Value::Map(m) | Value::Object(m), Value::Str(key)) => match m.get(key) {
                Some(x) => x.clone(),
                // Go's index gives the element type's zero value: "" for
                // the string maps docker's templates index (labels,
                // options), nil for anything else.
                None if m.values().all(|x| matches!(x, Value::Str(_))) => Value::Str(String::new()),
                None => Value::Nil,
            },
            (Value::Nil, _) => return Err(Fail::Call("index of untyped nil".into())),
            (other, k) => {
                return Err(Fail::Call(format!(
                    "cannot index {} with {}",
                    other.type_name(),
                    k.type_name()
                )))
            }
        };
    }
    Ok(v)
}

/// Go's `fmt.Sprint`: spaces only between operands that are not strings.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(v) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&v.to_string());
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: %v %s %d %q %t %x %%,
/// with `-` and `0` flags, width and precision (`%-20s`, `%.3s`, `%05d`).
fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(1 << 16),
                );
                chars.next();
            }
            n
        };
        let width = number(&mut chars);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(number(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let mut text = match (verb, arg) {
            ('q', Value::Str(s)) => serde_json::Value::from(s.as_str()).to_string(),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('d', Value::Int(_)) | ('s' | 'v' | 't', _) => arg.to_string(),
            (verb, other) => format!("%!{verb}({}={other})", other.type_name()),
        };
        if let (Some(p), 's' | 'v') = (precision, verb) {
            text = text.chars().take(p).collect();
        }
        let len = text.chars().count();
        if let Some(w) = width.filter(|&w| w > len) {
            let pad = w - len;
            if left {
                text.extend(std::iter::repeat_n(' ', pad));
            } else if zero && matches!(verb, 'd' | 'x') {
                let digits = text.trim_start_matches('-').to_string();
                let sign = if text.starts_with('-') { "-" } else { "" };
                text = format!("{sign}{}{digits}", "0".repeat(pad));
            } else {
                text = format!("{}{text}", " ".repeat(pad));
            }
        }
        out.push_str(&text);
    }
    out
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) | (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        _ => None,
    }
}

//! Running a parsed template.

use crate::parse::{Arg, Cmd, Node, Operand, Pipe, Pos};
use crate::{funcs, Error, Template, Value};

pub(crate) struct State<'a> {
    tmpl: &'a Template,
    vars: Vec<(String, Value)>,
    out: String,
    pub header: bool,
}

pub(crate) fn run(tmpl: &Template, data: &Value, header: bool) -> Result<String, Error> {
    let mut s = State {
        tmpl,
        vars: vec![("$".to_string(), data.clone())],
        out: String::new(),
        header,
    };
    s.walk(data, &tmpl.nodes)?;
    Ok(s.out)
}

pub(crate) fn exec_err(pos: Pos, node: &str, reason: impl Into<String>) -> Error {
    Error::Exec {
        line: pos.line,
        col: pos.col,
        node: node.to_string(),
        reason: reason.into(),
    }
}

impl State<'_> {
    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<(), Error> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(dot, p)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&v.to_string());
                    }
                }
                Node::If(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, p)?;
                    let branch = if v.truthy() { body } else { els };
                    self.walk(dot, branch)?;
                    self.vars.truncate(mark);
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipe(dot, p)?;
                    if v.truthy() {
                        self.walk(&v, body)?;
                    } else {
                        self.walk(dot, els)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => self.range(dot, p, body, els)?,
            }
        }
        Ok(())
    }

    fn range(&mut self, dot: &Value, p: &Pipe, body: &[Node], els: &[Node]) -> Result<(), Error> {
        let mark = self.vars.len();
        // The pipeline's variables name key and element, not its value.
        let mut bare = p.clone();
        let names = std::mem::take(&mut bare.vars);
        let v = self.pipe(dot, &bare)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::Int(i as i64), e.clone()))
                .collect(),
            Value::Map(m) | Value::Object(m) => m
                .iter()
                .map(|(k, e)| (Value::Str(k.clone()), e.clone()))
                .collect(),
            Value::Nil | Value::NilList => Vec::new(),
            other => {
                let c = &p.cmds[0];
                return Err(exec_err(
                    c.pos,
                    &c.text,
                    format!("range can't iterate over {other}"),
                ));
            }
        };
        if items.is_empty() {
            self.walk(dot, els)?;
        }
        for (k, e) in items {
            let inner = self.vars.len();
            match names.as_slice() {
                [one] => self.vars.push((one.clone(), e.clone())),
                [key, elem] => {
                    self.vars.push((key.clone(), k));
                    self.vars.push((elem.clone(), e.clone()));
                }
                _ => {}
            }
            self.walk(&e, body)?;
            self.vars.truncate(inner);
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipe(&mut self, dot: &Value, p: &Pipe) -> Result<Value, Error> {
        let mut value: Option<Value> = None;
        for c in &p.cmds {
            value = Some(self.cmd(dot, c, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &p.vars {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => {
                        let c = &p.cmds[0];
                        return Err(exec_err(
                            c.pos,
                            &c.text,
                            format!("undefined variable: {name}"),
                        ));
                    }
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn cmd(&mut self, dot: &Value, c: &Cmd, piped: Option<Value>) -> Result<Value, Error> {
        let first = &c.args[0];
        if let Operand::Func(name) = &first.op {
            let mut args = Vec::new();
            for a in &c.args[1..] {
                args.push(self.arg(dot, a)?);
            }
            args.extend(piped);
            return funcs::call(self, name, &args).map_err(|e| match e {
                funcs::Fail::Unknown => {
                    exec_err(first.pos, &c.text, format!("function {name:?} not defined"))
                }
                funcs::Fail::Call(reason) => {
                    exec_err(c.pos, &c.text, format!("error calling {name}: {reason}"))
                }
                funcs::Fail::Args(reason) => exec_err(c.pos, &c.text, reason),
            });
        }
        if c.args.len() > 1 || piped.is_some() {
            return Err(exec_err(
                c.pos,
                &c.text,
                format!("can't give argument to non-function {}", first.text),
            ));
        }
        self.arg(dot, first)
    }

    fn arg(&mut self, dot: &Value, a: &Arg) -> Result<Value, Error> {
        match &a.op {
            Operand::Dot => Ok(dot.clone()),
            Operand::Field(fields) => self.fields(dot.clone(), fields, a),
            Operand::Var(name, fields) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(exec_err(
                        a.pos,
                        &a.text,
                        format!("undefined variable: {name}"),
                    ));
                };
                let v = v.clone();
                self.fields(v, fields, a)
            }
            Operand::Sub(p, fields) => {
                let v = self.pipe(dot, p)?;
                self.fields(v, fields, a)
            }
            Operand::Func(name) => funcs::call(self, name, &[])
                .map_err(|_| exec_err(a.pos, &a.text, format!("function {name:?} not defined"))),
            Operand::Str(s) => Ok(Value::Str(s.clone())),
            Operand::Int(i) => Ok(Value::Int(*i)),
            Operand::Float(f) => Ok(Value::Float(*f)),
            Operand::Bool(b) => Ok(Value::Bool(*b)),
            Operand::Nil => Err(exec_err(a.pos, &a.text, "nil is not a command")),
        }
    }

    /// The `json` function's indent, when the template asked for Go's
    /// `MarshalIndent`.
    pub(crate) fn json_indent(&self) -> Option<&str> {
        self.tmpl.json_indent.as_deref()
    }

    /// Whether `key` is how Go's JSON tags name the field `field`
    /// (`digest`/`Digest`, `diff_ids`/`DiffIDs`, `os.version`/`OSVersion`),
    /// when the template asked for that lookup.
    fn is_json_tag_of(&self, key: &str, field: &str) -> bool {
        self.tmpl.json_tag_fields
            && key.len() >= field.len()
            && key
                .chars()
                .filter(|c| !matches!(c, '_' | '.'))
                .map(|c| c.to_ascii_lowercase())
                .eq(field.chars().map(|c| c.to_ascii_lowercase()))
    }

    fn fields(&self, mut v: Value, fields: &[String], a: &Arg) -> Result<Value, Error> {
        for f in fields {
            v = match v {
                Value::Map(mut m) => m.remove(f).unwrap_or(Value::Nil),
                Value::Object(mut m) => match m.remove(f) {
                    Some(x) => x,
                    None => {
                        let alias = self.tmpl.aliases.iter().find(|(field, _)| field == f);
                        let key = alias
                            .map(|(_, key)| key.clone())
                            .or_else(|| m.keys().find(|k| self.is_json_tag_of(k, f)).cloned());
                        match key.and_then(|key| m.remove(&key)) {
                            Some(x) => x,
                            None if self.header => Value::Nil,
                            None => {
                                return Err(exec_err(
                                    a.pos,
                                    &a.text,
                                    format!("map has no entry for key {f:?}"),
                                ))
                            }
                        }
                    }
                },
                Value::Struct {
                    type_name,
                    fields,
                    json,
                } => {
                    let alias = self.tmpl.aliases.iter().find(|(field, _)| field == f);
                    let wanted = |name: &String| {
                        name == f
                            || alias.is_some_and(|(_, key)| name == key)
                            || self.is_json_tag_of(name, f)
                    };
                    match fields.into_iter().find(|(name, _)| wanted(name)) {
                        Some((_, x)) => x,
                        None => {
                            // docker inspect retries a failed template on
                            // the document's JSON map: its error is the
                            // map's.
                            let reason = match json {
                                crate::JsonForm::Typed { .. } => {
                                    format!("map has no entry for key {f:?}")
                                }
                                crate::JsonForm::Context => {
                                    format!("can't evaluate field {f} in type {type_name}")
                                }
                            };
                            return Err(exec_err(a.pos, &a.text, reason));
                        }
                    }
                }
                Value::Nil => {
                    return Err(exec_err(
                        a.pos,
                        &a.text,
                        format!("nil pointer evaluating interface {{}}.{f}"),
                    ))
                }
                other => {
                    return Err(exec_err(
                        a.pos,
                        &a.text,
                        format!("can't evaluate field {f} in type {}", other.type_name()),
                    ))
                }
            };
        }
        Ok(v)
    }
}

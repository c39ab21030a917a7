//! Template text → nodes: text and actions, control structures nested.

use crate::Error;

/// Where a node starts: line (1-based) and byte column (0-based), as Go
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
}

/// A pipeline: optional variable declaration, commands joined by `|`.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub vars: Vec<String>,
    /// `=` (assign an existing variable) rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub args: Vec<Arg>,
    /// The command's text and position, for error messages.
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Dot,
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// `(pipeline).A.B`.
    Sub(Box<Pipe>, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub op: Operand,
    pub text: String,
    pub pos: Pos,
}

fn pos_of(src: &str, offset: usize) -> Pos {
    let before = &src[..offset];
    Pos {
        line: 1 + before.matches('\n').count(),
        col: offset - before.rfind('\n').map_or(0, |i| i + 1),
    }
}

fn perr(src: &str, offset: usize, reason: impl Into<String>) -> Error {
    Error::Parse {
        line: pos_of(src, offset).line,
        reason: reason.into(),
    }
}

/// One `{{ }}`: its inside and the offset where the inside starts.
enum Piece<'a> {
    Text(String),
    Action(&'a str, usize),
}

/// Splits the template into text and actions, applying `{{-`/`-}}`.
fn pieces(src: &str) -> Result<Vec<Piece<'_>>, Error> {
    let mut out = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(rel) = src[rest..].find("{{") {
        let open = rest + rel;
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut start = open + 2;
        if src[start..].starts_with("- ") || src[start..].starts_with("-\t") {
            text = text.trim_end();
            start += 1;
        }
        let end = find_close(src, start)?;
        let mut inner_end = end;
        trim_next = false;
        if src[..end].ends_with(" -") || src[..end].ends_with("\t-") {
            inner_end -= 1;
            trim_next = true;
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        let inner = &src[start..inner_end];
        let trimmed = inner.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            out.push(Piece::Action(inner, start));
        }
        rest = end + 2;
    }
    let mut text = &src[rest..];
    if trim_next {
        text = text.trim_start();
    }
    if !text.is_empty() {
        out.push(Piece::Text(text.to_string()));
    }
    Ok(out)
}

/// The offset of the `}}` closing the action starting at `from`, skipping
/// quoted strings.
fn find_close(src: &str, from: usize) -> Result<usize, Error> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' | b'`' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    if b[i.min(b.len() - 1)] == b'\n' && q != b'`' {
                        return Err(perr(src, i, "unterminated quoted string"));
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(perr(src, from, "unterminated quoted string"));
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    Err(perr(src, from, "unclosed action"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.`, `.A.B`, `$x`, `$x.A`, an identifier, a literal: kept as text.
    Word(String),
    Str(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn tokens(src: &str, inner: &str, base: usize) -> Result<Vec<(Tok, usize)>, Error> {
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = base + i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((Tok::LParen, at));
                i += 1;
            }
            b')' => {
                out.push((Tok::RParen, at));
                i += 1;
            }
            b'|' => {
                out.push((Tok::Pipe, at));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, at));
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                out.push((Tok::Declare, at));
                i += 2;
            }
            b'=' => {
                out.push((Tok::Assign, at));
                i += 1;
            }
            b'"' | b'`' => {
                let q = c;
                let mut j = i + 1;
                while j < b.len() && b[j] != q {
                    if b[j] == b'\\' && q == b'"' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return Err(perr(src, at, "unterminated quoted string"));
                }
                let raw = &inner[i..=j];
                let s = if q == b'`' {
                    raw[1..raw.len() - 1].to_string()
                } else {
                    serde_json::from_str::<String>(raw)
                        .map_err(|_| perr(src, at, format!("bad string syntax: {raw}")))?
                };
                out.push((Tok::Str(s), at));
                i = j + 1;
            }
            _ => {
                let mut j = i;
                while j < b.len() && !b" \t\n\r()|,=\"`".contains(&b[j]) {
                    if b[j] == b':' && b.get(j + 1) == Some(&b'=') {
                        break;
                    }
                    j += 1;
                }
                if j == i {
                    return Err(perr(
                        src,
                        at,
                        format!("unexpected {:?} in command", c as char),
                    ));
                }
                out.push((Tok::Word(inner[i..j].to_string()), at));
                i = j;
            }
        }
    }
    Ok(out)
}

struct ActionParser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    i: usize,
    end: usize,
}

impl ActionParser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.0)
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        let at = self.toks.get(self.i).map_or(self.end, |t| t.1);
        perr(self.src, at, reason)
    }

    /// `[$a[, $b] :=|=] cmd | cmd …`, up to `)` or the end.
    fn pipeline(&mut self, ctx: &str) -> Result<Pipe, Error> {
        let mut vars = Vec::new();
        let mut assign = false;
        // A declaration: variables followed by := or =.
        let save = self.i;
        loop {
            match self.toks.get(self.i) {
                Some((Tok::Word(w), _)) if w.starts_with('$') && !w[1..].contains('.') => {
                    vars.push(w.clone());
                    self.i += 1;
                    match self.peek() {
                        Some(Tok::Comma) if vars.len() == 1 => self.i += 1,
                        Some(Tok::Declare) => {
                            self.i += 1;
                            break;
                        }
                        Some(Tok::Assign) => {
                            assign = true;
                            self.i += 1;
                            break;
                        }
                        _ => {
                            vars.clear();
                            self.i = save;
                            break;
                        }
                    }
                }
                _ => {
                    vars.clear();
                    self.i = save;
                    break;
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.command()?);
            match self.peek() {
                Some(Tok::Pipe) => self.i += 1,
                _ => break,
            }
        }
        if cmds.iter().any(|c| c.args.is_empty()) {
            return Err(self.err(format!("missing value for {ctx}")));
        }
        Ok(Pipe { vars, assign, cmds })
    }

    fn command(&mut self) -> Result<Cmd, Error> {
        let start = self.toks.get(self.i).map_or(self.end, |t| t.1);
        let mut args = Vec::new();
        while let Some(t) = self.peek() {
            if matches!(t, Tok::Pipe | Tok::RParen) {
                break;
            }
            args.push(self.operand()?);
        }
        let text = args
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Cmd {
            args,
            text,
            pos: pos_of(self.src, start),
        })
    }

    fn operand(&mut self) -> Result<Arg, Error> {
        let Some((tok, at)) = self.toks.get(self.i).cloned() else {
            return Err(self.err("missing operand"));
        };
        self.i += 1;
        let pos = pos_of(self.src, at);
        match tok {
            Tok::Str(s) => Ok(Arg {
                text: format!("{s:?}"),
                op: Operand::Str(s),
                pos,
            }),
            Tok::LParen => {
                let pipe = self.pipeline("parenthesized pipeline")?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("unclosed left paren"));
                }
                let close = self.toks[self.i].1;
                self.i += 1;
                // Fields right after `)` apply to the result.
                let mut fields = Vec::new();
                let mut text = self.src[at..=close].to_string();
                if let Some((Tok::Word(w), wat)) = self.toks.get(self.i).cloned() {
                    if wat == close + 1 && w.starts_with('.') {
                        self.i += 1;
                        fields = split_fields(&w);
                        text.push_str(&w);
                    }
                }
                Ok(Arg {
                    op: Operand::Sub(Box::new(pipe), fields),
                    text,
                    pos,
                })
            }
            Tok::Word(w) => {
                let op = word(&w).ok_or_else(|| perr(self.src, at, format!("bad syntax: {w}")))?;
                // A field chain's position is its last field's, as Go's.
                let pos = match &op {
                    Operand::Field(f) | Operand::Var(_, f) if !f.is_empty() => {
                        let last = w.rfind('.').unwrap_or(0);
                        pos_of(self.src, at + last)
                    }
                    _ => pos,
                };
                Ok(Arg { op, text: w, pos })
            }
            other => Err(perr(
                self.src,
                at,
                format!("unexpected {other:?} in operand"),
            )),
        }
    }
}

fn split_fields(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn word(w: &str) -> Option<Operand> {
    if w == "." {
        return Some(Operand::Dot);
    }
    if let Some(rest) = w.strip_prefix('.') {
        return Some(Operand::Field(split_fields(rest)));
    }
    if w.starts_with('$') {
        let (name, fields) = match w.find('.') {
            Some(i) => (&w[..i], split_fields(&w[i..])),
            None => (w, Vec::new()),
        };
        return Some(Operand::Var(name.to_string(), fields));
    }
    match w {
        "true" => return Some(Operand::Bool(true)),
        "false" => return Some(Operand::Bool(false)),
        "nil" => return Some(Operand::Nil),
        _ => {}
    }
    let first = w.chars().next()?;
    if first.is_ascii_digit() || first == '-' || first == '+' {
        if let Ok(i) = w.parse::<i64>() {
            return Some(Operand::Int(i));
        }
        return w.parse::<f64>().ok().map(Operand::Float);
    }
    (first.is_alphabetic() || first == '_')
        .then(|| w.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .and_then(|ok| ok.then(|| Operand::Func(w.to_string())))
}

/// What an action is, for the tree builder.
enum Act {
    Pipe(Pipe),
    If(Pipe),
    Range(Pipe),
    With(Pipe),
    Else,
    ElseIf(Pipe),
    End,
}

fn action(src: &str, inner: &str, base: usize) -> Result<Act, Error> {
    let toks = tokens(src, inner, base)?;
    let keyword = match toks.first() {
        Some((Tok::Word(w), _)) => w.clone(),
        None => return Err(perr(src, base, "missing value for command")),
        _ => String::new(),
    };
    let mut p = ActionParser {
        src,
        toks,
        i: 1,
        end: base + inner.len(),
    };
    let act = match keyword.as_str() {
        "if" => Act::If(p.pipeline("if")?),
        "range" => Act::Range(p.pipeline("range")?),
        "with" => Act::With(p.pipeline("with")?),
        "end" => Act::End,
        "else" => match p.toks.get(1) {
            None => Act::Else,
            Some((Tok::Word(w), _)) if w == "if" => {
                p.i = 2;
                Act::ElseIf(p.pipeline("if")?)
            }
            _ => return Err(p.err("unexpected token after else")),
        },
        "define" | "template" | "block" | "break" | "continue" => {
            return Err(perr(
                src,
                base,
                format!("{keyword} is not supported by kiln"),
            ))
        }
        _ => {
            p.i = 0;
            Act::Pipe(p.pipeline("command")?)
        }
    };
    if p.i < p.toks.len() {
        return Err(p.err(format!("unexpected {:?} in {keyword}", p.toks[p.i].0)));
    }
    Ok(act)
}

pub(crate) fn parse(src: &str) -> Result<Vec<Node>, Error> {
    let mut acts = Vec::new();
    for piece in pieces(src)? {
        acts.push(match piece {
            Piece::Text(t) => (None, Some(t), 0),
            Piece::Action(inner, at) => (Some(action(src, inner, at)?), None, at),
        });
    }
    let mut iter = acts.into_iter();
    let (nodes, stop) = block(src, &mut iter)?;
    match stop {
        None => Ok(nodes),
        Some((_, at)) => Err(perr(src, at, "unexpected {{end}} or {{else}}")),
    }
}

type Items = std::vec::IntoIter<(Option<Act>, Option<String>, usize)>;

/// The `{{else}}`/`{{end}}` that ended a block, and where.
type Stop = Option<(Act, usize)>;

/// Nodes up to an `{{else}}`/`{{end}}` (returned) or the end of input.
fn block(src: &str, it: &mut Items) -> Result<(Vec<Node>, Stop), Error> {
    let mut nodes = Vec::new();
    while let Some((act, text, at)) = it.next() {
        let Some(act) = act else {
            nodes.push(Node::Text(text.unwrap_or_default()));
            continue;
        };
        match act {
            Act::Pipe(p) => nodes.push(Node::Action(p)),
            Act::If(p) => nodes.push(control(src, it, at, p, Node::If)?),
            Act::Range(p) => nodes.push(control(src, it, at, p, Node::Range)?),
            Act::With(p) => nodes.push(control(src, it, at, p, Node::With)?),
            stop @ (Act::Else | Act::ElseIf(_) | Act::End) => return Ok((nodes, Some((stop, at)))),
        }
    }
    Ok((nodes, None))
}

fn control(
    src: &str,
    it: &mut Items,
    at: usize,
    pipe: Pipe,
    make: fn(Pipe, Vec<Node>, Vec<Node>) -> Node,
) -> Result<Node, Error> {
    let (body, stop) = block(src, it)?;
    let els = match stop {
        Some((Act::End, _)) => Vec::new(),
        Some((Act::Else, _)) => {
            let (els, stop) = block(src, it)?;
            match stop {
                Some((Act::End, _)) => els,
                _ => return Err(perr(src, at, "expected end; found else or EOF")),
            }
        }
        // `else if` is an `if` nested in the else branch sharing its `end`.
        Some((Act::ElseIf(p), eat)) => vec![control(src, it, eat, p, Node::If)?],
        _ => return Err(perr(src, at, "unexpected EOF")),
    };
    Ok(make(pipe, body, els))
}

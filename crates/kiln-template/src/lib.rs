//! Go's `text/template`, as docker's `--format` flags use it.
//!
//! Overview: [`Template::parse`] reads a template; [`Template::execute`]
//! runs it on a [`Value`] and returns the text. Values print the way Go's
//! `fmt` prints them (`[a b]` for lists, `map[k:v]` for maps with sorted
//! keys, `{a b}` for structs, `<no value>` for a missing value), and the
//! function set is text/template's (`and or not len index print printf
//! println eq ne lt le gt ge`) plus docker's (`json join split title lower
//! upper pad truncate`). [`tabwrite`] aligns `table` output the way docker's
//! `text/tabwriter` does, and [`Template::execute_header`] produces a `table`
//! header row with docker's header functions.
//!
//! Why not a crate: `gtmpl` (the one Rust implementation of Go templates)
//! prints lists and maps with Rust's `Debug` (`[String("a")]`), keeps maps
//! in hash order, has no struct/map distinction for docker's "can't evaluate
//! field" errors, and has had no release since 2021. docker's behaviour is
//! the contract here, so kiln carries this small engine.
//!
//! Supported syntax: text and `{{ }}` actions with `{{-`/`-}}` trimming and
//! `{{/* comments */}}`; pipelines with `|`; fields (`.A.B`, `$x.A`,
//! `(pipeline).A`); variables (`$x := …`, `$x = …`, `range $i, $e := …`);
//! `if`/`else if`/`else`, `range` (lists and maps, with `else`), `with`;
//! string (`"…"`, `` `…` ``), number, `true`/`false`/`nil` constants.
//! `define`/`template`/`block` are refused with a parse error.

mod exec;
mod funcs;
mod parse;
mod tabwriter;
mod value;

pub use tabwriter::tabwrite;
pub use value::{JsonForm, Value};

/// A template that failed to parse or to run. The message is docker's:
/// `template parsing error: template: :1:2: executing "" at <.Nope>: …`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template parsing error: template: :{line}: {reason}")]
    Parse { line: usize, reason: String },
    #[error(
        "template parsing error: template: :{line}:{col}: executing \"\" at <{node}>: {reason}"
    )]
    Exec {
        line: usize,
        col: usize,
        node: String,
        reason: String,
    },
}

impl Error {
    /// A template is input: every failure of one is the user's to fix.
    pub fn kind(&self) -> kiln_core::ErrorKind {
        kiln_core::ErrorKind::InvalidInput
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
    aliases: Vec<(String, String)>,
    json_indent: Option<String>,
    json_tag_fields: bool,
}

impl Template {
    /// Parses `text` as a Go template.
    pub fn parse(text: &str) -> Result<Template, Error> {
        Ok(Template {
            nodes: parse::parse(text)?,
            aliases: Vec::new(),
            json_indent: None,
            json_tag_fields: false,
        })
    }

    /// When a map has no key `field`, look up `key` instead. docker's
    /// inspect runs templates on its typed struct (field `ID`) and falls
    /// back to the JSON document (key `Id`); an alias gives both.
    pub fn alias(mut self, field: &str, key: &str) -> Template {
        self.aliases.push((field.to_string(), key.to_string()));
        self
    }

    /// Makes the `json` function indent as Go's `json.MarshalIndent(v, "",
    /// indent)` does (buildx's templates) instead of docker's one-line
    /// `json.Marshal`. Both escape `<`, `>` and `&` as Go's encoder does.
    pub fn json_indent(mut self, indent: &str) -> Template {
        self.json_indent = Some(indent.to_string());
        self
    }

    /// Finds a struct's or object's field by its Go name when the data
    /// holds it under its JSON tag: `.Manifest.Digest` reads `digest`,
    /// `.Image.RootFS.DiffIDs` reads `diff_ids`, `.OSVersion` reads
    /// `os.version`. For templates that run on Go structs whose JSON form
    /// is what kiln has (buildx's imagetools inputs are `ocispecs` types).
    pub fn json_tag_fields(mut self) -> Template {
        self.json_tag_fields = true;
        self
    }

    /// Runs the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        exec::run(self, data, false)
    }

    /// Runs the template on a map of column headers, with docker's header
    /// functions (`json`, `join`, `upper`… return the header unchanged), to
    /// make a `table` format's header row.
    pub fn execute_header(&self, headers: &Value) -> Result<String, Error> {
        exec::run(self, headers, true)
    }
}

#[cfg(test)]
mod tests;

//! The Dockerfile frontend: text in, a typed model out, with no I/O.
//!
//! The pipeline, in the order a build uses it:
//!
//! 1. [`lines::logical_lines`]: parser directives, continuations (either
//!    escape character), comments inside continuations, heredocs, spans.
//! 2. [`parse()`]: each logical line to a typed [`Instruction`] (flags
//!    checked, JSON vs shell form decided, `k=v` pairs split) and the
//!    instructions grouped into [`Stage`]s; global `ARG`s kept apart.
//! 3. [`scope`]: build args, the global scope for `FROM` lines
//!    ([`Dockerfile::global_scope`], [`Dockerfile::resolve_from`]) and a
//!    [`StageScope`] per stage that expands each instruction in turn
//!    ([`StageScope::expand`]) with docker's ARG/ENV rules.
//! 4. [`expand`]: the word expansion itself (BuildKit's rules).
//!
//! 5. [`config::ConfigEdit`]: what a config-only instruction does to an
//!    image config: the one editor `kiln build` and `import --change` use.
//!
//! Also [`ignore::Matcher`] for `.dockerignore` and
//! [`ignore::ignore_file_for`] for the `NAME.dockerignore` lookup.
//!
//! Every error is an [`Error`] that renders as `Dockerfile:LINE:COL:
//! message`, the offending instruction and, where it helps, a hint.

pub mod config;
mod duration;
pub mod error;
pub mod expand;
mod flags;
pub mod ignore;
pub mod lines;
pub mod model;
mod mount;
mod outline;
mod parse;
pub mod scope;
mod words;

pub use error::Error;
pub use model::*;
pub use outline::outline_instructions;
pub use parse::{parse, parse_lenient, parse_line, INSTRUCTIONS};
pub use scope::{BuildOptions, GlobalScope, Platform, StageScope};

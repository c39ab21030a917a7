//! The Dockerfile frontend: text in, a typed model out, with no I/O.
//!
//! Status: this crate is being built in steps (see issue "Dockerfile
//! frontend"). Present now:
//!
//! - [`expand`]: docker's (BuildKit's) shell-word expansion — `$VAR`,
//!   `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`,
//!   `${VAR:?w}`, `${VAR?w}`, quotes and escapes — as [`expand::expand_word`]
//!   and [`expand::expand_words`].
//! - [`ignore::Matcher`]: `.dockerignore` with docker's pattern rules.
//! - [`lines::logical_lines`]: parser directives, continuations (either
//!   escape character), comments inside continuations, heredocs, spans.
//!
//! To come: the instruction model with flags and spans, ARG/ENV scoping, the `NAME.dockerignore`
//! lookup beside a Dockerfile.

pub mod expand;
pub mod ignore;
pub mod lines;

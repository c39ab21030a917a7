//! Running one process in an isolated root filesystem, for `RUN` steps
//! (and later containers).
//!
//! The caller describes the process ([`ProcessSpec`]) and hands over a
//! mounted root filesystem; [`Executor::run`] writes an OCI runtime-spec
//! bundle (`config.json` plus the `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` it bind-mounts, so they never land in a layer) and
//! runs it with one of two backends that read the same bundle:
//!
//! - [`Runtime::Builtin`]: youki's `libcontainer`, linked into kiln. It is
//!   started in a re-exec'd, single-threaded kiln process
//!   ([`run_builtin_child`], behind a hidden subcommand), never forked from
//!   a threaded parent.
//! - [`Runtime::Binary`]: an external OCI runtime (`runc`), for
//!   `--runtime PATH`.
//!
//! Isolation: mount, pid, ipc and uts namespaces (and network with
//! `Network::None`); docker's default capabilities; `no_new_privs`; a
//! default seccomp profile ([`seccomp`]); `/proc`, a minimal `/dev`,
//! `/dev/shm`, read-only `/sys`.

mod error;
mod runtime;
pub mod seccomp;
mod spec;
pub mod user;

pub use error::{ExecError, Result};
pub use runtime::{run_builtin_child, Executor, Output, Runtime, BUILTIN_CHILD_ARG};
pub use spec::{ExtraMount, Network, ProcessSpec, RUNTIME_MOUNTPOINTS};
pub use user::{resolve_user, User};

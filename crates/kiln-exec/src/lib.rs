//! Running processes in isolated root filesystems, for `RUN` steps and
//! (next) `kiln run`'s containers.
//!
//! The caller describes the process ([`ProcessSpec`]) and hands over a
//! mounted root filesystem. An [`Executor`] writes an OCI runtime bundle
//! under its state directory (`bundles/<id>/`: a typed `config.json` made
//! with `oci-spec`, plus the `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` it bind-mounts, so they never land in a layer) and
//! drives the container's lifecycle through a [`ContainerRuntime`]:
//! [`Executor::create`] (or [`Executor::create_with_terminal`], which also
//! returns the pty master) gives a [`Container`] to `start`, `kill`,
//! `state`, `wait`, `exec` in (waited, detached, or on a terminal) and
//! `delete`; [`Executor::run`] does all of it for a process that runs to
//! its end (a RUN step).
//!
//! Backends ([`Runtime`], both through [`OciCli`], runc's command line):
//!
//! - [`Runtime::Builtin`]: youki's `libcontainer`, linked into kiln, each
//!   verb run in a re-exec'd, single-threaded kiln process
//!   ([`run_builtin_child`], behind a hidden subcommand), never forked
//!   from a threaded parent.
//! - [`Runtime::Binary`]: an external OCI runtime (`runc`), for
//!   `--runtime PATH`.
//!
//! [`testing::FakeRuntime`] stands in for both in tests without root.
//!
//! Isolation: mount, pid, ipc and uts namespaces (and network with
//! `Network::None`); docker's default capabilities with `--cap-add` and
//! `--cap-drop`; `no_new_privs` when asked; docker's seccomp profile or
//! another ([`seccomp`]); `/proc`, a minimal `/dev`, `/dev/shm`, read-only
//! `/sys` and the container's cgroup; limits ([`Resources`]), read by
//! [`cgroup`]. [`resolve_user`] reads the image's account files inside its
//! root, whatever links they are.
//!
//! Modules, one job each:
//!
//! - `runtime`: the [`ContainerRuntime`] trait and its types ([`State`],
//!   [`Status`], [`ProcessIo`]); under it `oci_cli` ([`OciCli`], runc's
//!   command line), `executor` ([`Executor`], [`Container`]) and
//!   `orphans` (removing the RUN containers of dead kiln processes);
//! - `builtin`: the builtin runtime's child ([`run_builtin_child`]);
//! - `spec`: [`ProcessSpec`] and the OCI runtime spec made from it;
//!   `caps`: capability sets;
//! - `console`: receiving a terminal's master from a runtime;
//! - [`seccomp`], [`cgroup`], [`user`], `mountpoints`
//!   ([`filter_mountpoints`]), [`testing`], `error` ([`ExecError`]).

pub mod binfmt;
mod builtin;
mod caps;
pub mod cgroup;
mod console;
mod error;
mod mountpoints;
mod runtime;
pub mod seccomp;
mod spec;
pub mod testing;
pub mod user;

pub use builtin::run_builtin_child;
pub use error::{ExecError, Result};
pub use mountpoints::filter_mountpoints;
pub use runtime::{
    Container, ContainerRuntime, ExecProcess, Executor, OciCli, Output, ProcessIo, Runtime, State,
    Status, BUILTIN_CHILD_ARG,
};
pub use seccomp::SeccompProfile;
pub use spec::{ExtraMount, JoinedNetwork, Network, ProcessSpec, Resources, RUNTIME_MOUNTPOINTS};
pub use user::{resolve_user, User};

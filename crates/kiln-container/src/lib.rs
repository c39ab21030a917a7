//! Containers from images, daemonless: an image is the recipe, a
//! container the cake. Each container has its own thin writable layer (an
//! active snapshot on the image's committed layers, shared by every
//! container of that image), a record under `<store>/containers/<id>/`,
//! and while it runs a monitor process of its own.
//!
//! - [`Engine`]: the lifecycle — `create` (record, writable layer,
//!   volumes, a GC root on the image), `start` (spawns the monitor),
//!   `stop`, `kill`, `wait`, `remove` — and reconciliation: a container
//!   whose monitor died (killed, a reboot) is shown exited, never hung.
//! - [`monitor`]: the per-container monitor (like conmon): session of its
//!   own, subreaper, json-file logs, exit code, restart policy, `--rm`.
//! - [`containers`]: records on disk, names unique under a lock, lookup by
//!   ID, prefix or name, atomic state updates.
//! - [`command`]: docker's ENTRYPOINT/CMD merge and the 126/127 checks.
//! - [`spec`]: a record → kiln-exec's `ProcessSpec`.
//! - [`logs`]: docker's json-file log format, `--since/--until/--tail`.
//! - [`volumes`]: named and anonymous volumes, copy-up.
//! - [`exec`]: `exec` in a running container (and its detached helper).
//! - [`cp`]: files between a container and the host or a tar stream.
//! - [`diff`], [`commit`]: a container's changes, listed or as an image.
//! - [`top`], [`stats`]: a running container's processes and resource use.
//! - [`health`]: HEALTHCHECK probes, run by the monitor.
//! - [`inspect`]: docker's `container inspect` document.
//! - `in_use`: the images containers use (`Engine::images_in_use`).
//! - [`record`], [`signal`], `names`, `error`.

mod cgroup;
pub mod command;
pub mod commit;
pub mod containers;
pub mod cp;
pub mod diff;
mod engine;
mod error;
pub mod exec;
pub mod health;
mod in_use;
pub mod inspect;
pub mod logs;
pub mod monitor;
mod names;
pub mod net;
mod net_settings;
pub mod record;
pub mod signal;
pub mod spec;
pub mod stats;
mod terminal;
pub mod top;
pub mod usage;
pub mod volumes;

pub use commit::CommitOptions;
pub use containers::{Container, Containers};
pub use engine::{Attach, CreateRequest, Engine, MONITOR_ARG};
pub use error::{ContainerError, Result};
pub use exec::{run_exec_helper, ExecRequest, EXEC_ARG};
pub use monitor::run_monitor;
pub use record::{
    ContainerConfig, HostConfig, MountConfig, ProcessConfig, RestartPolicy, State, Status,
};
pub use volumes::{Volume, Volumes};

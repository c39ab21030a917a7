//! A container on disk: its configuration (`config.json`, written once at
//! create and on rename) and its state (`state.json`, rewritten atomically
//! by whoever changes it: the monitor, `stop`, the reconciler).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything `create` decided: what runs, from which image, with what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    /// 64 hex digits.
    pub id: String,
    /// Without docker's leading `/`.
    pub name: String,
    /// RFC 3339, nanoseconds.
    pub created: String,
    /// What the user typed (`busybox`, `app:1`, an ID).
    pub image: String,
    /// The image ID (config digest) and manifest it was created from.
    pub image_id: String,
    pub image_manifest: String,
    /// The snapshot the writable layer stands on (the image's top chain
    /// id; none for an image without layers).
    pub parent_snapshot: Option<String>,
    /// The container's active snapshot key.
    pub snapshot: String,
    pub process: ProcessConfig,
    pub host: HostConfig,
}

/// The process and its environment, after the image's config and the
/// flags were merged (docker's `.Config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessConfig {
    /// What runs: entrypoint + cmd as resolved (see [`crate::command`]).
    pub path: String,
    pub args: Vec<String>,
    /// docker's `.Config.Entrypoint` and `.Config.Cmd` (for commit and
    /// inspect).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// As given (`name`, `uid:gid`): resolved in the root at start.
    pub user: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub healthcheck: Option<Healthcheck>,
    /// The image's VOLUME paths (docker's `.Config.Volumes`).
    pub volumes: Vec<String>,
    pub exposed_ports: Vec<String>,
    /// The image config's ONBUILD, kept for commit.
    pub on_build: Option<Vec<String>>,
}

/// docker's HEALTHCHECK, in nanoseconds as docker stores it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
}

/// How the host runs it (docker's `.HostConfig`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HostConfig {
    pub mounts: Vec<MountConfig>,
    /// `bridge` (kiln0), `none`, `host`, or a user network's name.
    pub network: String,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    pub read_only: bool,
    pub init: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// Bytes.
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub extra_hosts: Vec<(String, String)>,
    /// The OCI runtime: none for kiln's builtin one, else a runc binary.
    pub runtime: Option<PathBuf>,
    /// `-p`/`-P`, ranges expanded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<kiln_network::PortSpec>,
    /// `--dns`, `--dns-search`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// `--ip` (user networks), `--mac-address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// `--network-alias`: more names in a user network's DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// Networks joined after create (`network connect`), beside `network`;
    /// a start puts the container on all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<Connection>,
}

/// A network a container was connected to (`network connect`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Connection {
    pub network: String,
    /// `--alias`: its names in that network's DNS, beside its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountConfig {
    /// A named (or anonymous) volume.
    Volume {
        name: String,
        target: String,
        read_only: bool,
        anonymous: bool,
    },
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
        /// `--tmpfs PATH:exec`: programs may run from it (docker mounts
        /// a container's tmpfs `noexec` unless told).
        #[serde(default)]
        exec: bool,
    },
}

impl MountConfig {
    pub fn target(&self) -> &str {
        match self {
            MountConfig::Volume { target, .. }
            | MountConfig::Bind { target, .. }
            | MountConfig::Tmpfs { target, .. } => target,
        }
    }
}

/// docker's `--restart`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        max_retries: u32,
    },
    Always,
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let bad = || {
            format!("invalid restart policy {s:?}: use no, on-failure[:max-retries], always or unless-stopped")
        };
        match (name, count) {
            ("no" | "", None) => Ok(RestartPolicy::No),
            ("always", None) => Ok(RestartPolicy::Always),
            ("unless-stopped", None) => Ok(RestartPolicy::UnlessStopped),
            ("on-failure", None) => Ok(RestartPolicy::OnFailure { max_retries: 0 }),
            ("on-failure", Some(c)) => c
                .parse()
                .map(|max_retries| RestartPolicy::OnFailure { max_retries })
                .map_err(|_| format!("invalid restart policy {s:?}: the maximum retry count must be a number")),
            ("no" | "always" | "unless-stopped", Some(_)) => Err(format!(
                "invalid restart policy {s:?}: maximum retry count cannot be used with restart policy '{name}'"
            )),
            _ => Err(bad()),
        }
    }
}

impl RestartPolicy {
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// Whether a process that ended with `code` starts again after
    /// `restarts` restarts (a manual stop never restarts).
    pub fn restarts(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (*max_retries == 0 || restarts < *max_retries)
            }
        }
    }
}

/// docker's container statuses.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Restarting,
    Exited,
    Removing,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

/// What is true now (docker's `.State`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub status: Status,
    /// The container's init on the host, while it runs.
    pub pid: Option<i32>,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    /// Set by `stop`/`kill`: the monitor does not restart it.
    pub stopped_by_user: bool,
    /// The monitor process and its start time (clock ticks since boot,
    /// `/proc/PID/stat` field 22) so a recycled pid is not mistaken for it.
    pub monitor: Option<(i32, u64)>,
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last 5 probes.
    pub log: Vec<HealthResult>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn restart_policies_parse_as_docker_spells_them() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!("always".parse(), Ok(RestartPolicy::Always));
        assert_eq!(
            "on-failure:3".parse(),
            Ok(RestartPolicy::OnFailure { max_retries: 3 })
        );
        assert!("always:3"
            .parse::<RestartPolicy>()
            .unwrap_err()
            .contains("cannot be used"));
        assert!("sometimes".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn restart_decisions() {
        let p = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(p.restarts(1, 0, false));
        assert!(p.restarts(1, 1, false));
        assert!(!p.restarts(1, 2, false));
        assert!(!p.restarts(0, 0, false));
        assert!(!RestartPolicy::Always.restarts(1, 9, true));
        assert!(RestartPolicy::Always.restarts(0, 9, false));
        assert!(!RestartPolicy::No.restarts(1, 0, false));
    }
}

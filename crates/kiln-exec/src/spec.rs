//! The process description and the OCI runtime-spec `config.json` made
//! from it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::seccomp;
use crate::user::User;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network (docker build's default for RUN).
    Host,
    /// A private network namespace with only loopback.
    None,
}

/// An extra mount for the process (RUN --mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    Tmpfs {
        target: String,
        size: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `KEY=VALUE`; `PATH` and `HOME` are added when missing.
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub network: Network,
    pub hostname: String,
    pub mounts: Vec<ExtraMount>,
}

/// Paths the runtime mounts over (and may create as empty mountpoints in
/// the root filesystem): a build removes them from its change set when the
/// step itself did not make them.
pub const RUNTIME_MOUNTPOINTS: &[&str] = &[
    "proc",
    "dev",
    "sys",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

impl ProcessSpec {
    fn env(&self) -> Vec<String> {
        let mut env = self.env.clone();
        let has = |k: &str| {
            self.env
                .iter()
                .any(|e| e.split_once('=').map(|(n, _)| n) == Some(k))
        };
        if !has("PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !has("HOME") {
            env.push(format!("HOME={}", self.user.home));
        }
        env
    }

    /// `config.json` for a bundle whose support files (`hosts`,
    /// `resolv.conf`, `hostname`) are in `bundle`.
    pub fn runtime_spec(&self, rootfs: &Path, bundle: &Path) -> Value {
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        if self.network == Network::None {
            namespaces.push(json!({"type": "network"}));
        }
        let bind = |src: PathBuf, dst: &str, ro: bool| {
            let mut options = vec!["rbind", "rprivate"];
            if ro {
                options.push("ro");
            }
            json!({"destination": dst, "type": "bind", "source": src, "options": options})
        };
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
            bind(bundle.join("hosts"), "/etc/hosts", false),
            bind(bundle.join("resolv.conf"), "/etc/resolv.conf", false),
            bind(bundle.join("hostname"), "/etc/hostname", false),
        ];
        for m in &self.mounts {
            mounts.push(match m {
                ExtraMount::Bind { source, target, readonly } => bind(source.clone(), target, *readonly),
                ExtraMount::Tmpfs { target, size } => {
                    let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "mode=1777".to_string()];
                    if let Some(s) = size {
                        options.push(format!("size={s}"));
                    }
                    json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options})
                }
            });
        }
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {
                    "uid": self.user.uid,
                    "gid": self.user.gid,
                    "additionalGids": self.user.additional_gids,
                },
                "args": self.args,
                "env": self.env(),
                "cwd": if self.cwd.is_empty() { "/" } else { &self.cwd },
                "capabilities": {
                    "bounding": DEFAULT_CAPS,
                    "effective": DEFAULT_CAPS,
                    "permitted": DEFAULT_CAPS,
                },
                "noNewPrivileges": true,
            },
            "root": {"path": rootfs, "readonly": false},
            "hostname": self.hostname,
            "mounts": mounts,
            "linux": {
                "namespaces": namespaces,
                "seccomp": seccomp::default_profile(),
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                    "/sys/firmware", "/sys/devices/virtual/powercap"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
                ],
                "devices": [],
            },
        })
    }

    /// The bundle's support files, made for this run.
    pub(crate) fn support_files(&self) -> Vec<(&'static str, String)> {
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = if self.network == Network::None {
            String::new()
        } else if resolv.trim().is_empty() {
            "nameserver 8.8.8.8\n".to_string()
        } else {
            resolv
        };
        vec![
            (
                "hosts",
                format!(
                    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                    self.hostname
                ),
            ),
            ("resolv.conf", resolv),
            ("hostname", format!("{}\n", self.hostname)),
        ]
    }
}

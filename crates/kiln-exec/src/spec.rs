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
    /// `--add-host NAME:IP` lines appended to `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `RUN --security=insecure` (with `--allow security.insecure`): every
    /// capability, no seccomp filter, no masked paths, writable `/sys`,
    /// all device access allowed — BuildKit's insecure mode, close to
    /// docker's `--privileged` (host device nodes are not mounted).
    pub privileged: bool,
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

/// Capabilities by bit number, as the kernel headers name them.
const CAPS_BY_BIT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities a privileged step gets: every one this process may
/// pass on (its bounding set), as containerd's `WithPrivileged` gives
/// BuildKit's insecure steps. Asking for more fails the container's start
/// where the host withholds some (sandboxes often drop CAP_SYS_RESOURCE).
pub fn privileged_caps() -> Vec<&'static str> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    CAPS_BY_BIT
        .iter()
        .enumerate()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

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
        let caps: Vec<&str> = if self.privileged {
            privileged_caps()
        } else {
            DEFAULT_CAPS.to_vec()
        };
        let mut linux = json!({
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
        });
        if self.privileged {
            if let Some(l) = linux.as_object_mut() {
                l.remove("seccomp");
                l.insert("maskedPaths".into(), json!([]));
                l.insert("readonlyPaths".into(), json!([]));
                l.insert(
                    "resources".into(),
                    json!({"devices": [{"allow": true, "access": "rwm"}]}),
                );
            }
            for m in &mut mounts {
                if m["destination"] == "/sys" {
                    m["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
                }
            }
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
                    "bounding": caps,
                    "effective": caps,
                    "permitted": caps,
                },
                "noNewPrivileges": !self.privileged,
            },
            "root": {"path": rootfs, "readonly": false},
            "hostname": self.hostname,
            "mounts": mounts,
            "linux": linux,
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
            ("hosts", {
                let mut hosts = format!(
                        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                        self.hostname
                    );
                for (name, ip) in &self.extra_hosts {
                    hosts.push_str(&format!("{ip}\t{name}\n"));
                }
                hosts
            }),
            ("resolv.conf", resolv),
            ("hostname", format!("{}\n", self.hostname)),
        ]
    }
}

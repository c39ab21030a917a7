//! The process description and the OCI runtime-spec `config.json` made
//! from it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxNamespace,
    LinuxNamespaceType, LinuxResources, Mount, Process, Root, Spec,
};

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
pub(crate) const DEFAULT_CAPS: &[&str] = &[
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
pub(crate) fn privileged_caps() -> Vec<&'static str> {
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

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn mount(destination: &str, typ: &str, source: impl Into<PathBuf>, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some(typ.into()))
        .set_source(Some(source.into()))
        .set_options(Some(options));
    m
}

fn bind(source: impl Into<PathBuf>, destination: &str, readonly: bool) -> Mount {
    let mut options = strings(&["rbind", "rprivate"]);
    if readonly {
        options.push("ro".into());
    }
    mount(destination, "bind", source, options)
}

/// Names (`CAP_CHOWN`) to oci-spec's capabilities; a name this oci-spec
/// does not know is left out rather than failing the step.
fn capabilities(names: &[&str]) -> Capabilities {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n.strip_prefix("CAP_").unwrap_or(n)).ok())
        .collect()
}

/// docker's masked and read-only paths (none in privileged mode).
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
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

    /// The runtime-spec `process`: the container's init, or a process
    /// exec'd into a running container (the same shape).
    pub fn process(&self) -> Process {
        let caps = if self.privileged {
            capabilities(&privileged_caps())
        } else {
            capabilities(DEFAULT_CAPS)
        };
        let mut c = LinuxCapabilities::default();
        // Inheritable and ambient stay empty, as docker leaves them: a
        // non-root user's programs get no capabilities across exec.
        c.set_bounding(Some(caps.clone()))
            .set_effective(Some(caps.clone()))
            .set_permitted(Some(caps))
            .set_inheritable(None)
            .set_ambient(None);
        let mut user = oci_spec::runtime::User::default();
        user.set_uid(self.user.uid)
            .set_gid(self.user.gid)
            .set_additional_gids(Some(self.user.additional_gids.clone()));
        let mut p = Process::default();
        p.set_terminal(Some(false))
            .set_user(user)
            .set_args(Some(self.args.clone()))
            .set_env(Some(self.env()))
            .set_cwd(if self.cwd.is_empty() {
                "/".into()
            } else {
                PathBuf::from(&self.cwd)
            })
            .set_capabilities(Some(c))
            // No rlimits: the process inherits kiln's. runc refuses to set
            // some limits above the caller's (oci-spec's default NOFILE 1024
            // would also lower what builds get today).
            .set_rlimits(None)
            .set_no_new_privileges(Some(!self.privileged));
        p
    }

    /// `config.json` for a bundle whose support files (`hosts`,
    /// `resolv.conf`, `hostname`) are in `bundle`.
    pub fn runtime_spec(&self, rootfs: &Path, bundle: &Path) -> Spec {
        let mut namespaces = vec![
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ];
        if self.network == Network::None {
            namespaces.push(LinuxNamespaceType::Network);
        }
        let namespaces = namespaces
            .into_iter()
            .map(|t| {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(t);
                ns
            })
            .collect();
        let sys_options = if self.privileged {
            ["nosuid", "noexec", "nodev", "rw"]
        } else {
            ["nosuid", "noexec", "nodev", "ro"]
        };
        let mut mounts = vec![
            mount(
                "/proc",
                "proc",
                "proc",
                strings(&["nosuid", "noexec", "nodev"]),
            ),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                strings(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                strings(&[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                ]),
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                strings(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                strings(&["nosuid", "noexec", "nodev"]),
            ),
            mount("/sys", "sysfs", "sysfs", strings(&sys_options)),
            bind(bundle.join("hosts"), "/etc/hosts", false),
            bind(bundle.join("resolv.conf"), "/etc/resolv.conf", false),
            bind(bundle.join("hostname"), "/etc/hostname", false),
        ];
        for m in &self.mounts {
            mounts.push(match m {
                ExtraMount::Bind {
                    source,
                    target,
                    readonly,
                } => bind(source, target, *readonly),
                ExtraMount::Tmpfs { target, size } => {
                    let mut options = strings(&["nosuid", "nodev", "mode=1777"]);
                    if let Some(s) = size {
                        options.push(format!("size={s}"));
                    }
                    mount(target, "tmpfs", "tmpfs", options)
                }
            });
        }
        let mut linux = Linux::default();
        linux
            .set_namespaces(Some(namespaces))
            .set_devices(Some(Vec::new()))
            .set_uid_mappings(None)
            .set_gid_mappings(None);
        if self.privileged {
            let mut all = LinuxDeviceCgroup::default();
            all.set_allow(true).set_access(Some("rwm".into()));
            let mut resources = LinuxResources::default();
            resources.set_devices(Some(vec![all]));
            linux
                .set_seccomp(None)
                .set_masked_paths(Some(Vec::new()))
                .set_readonly_paths(Some(Vec::new()))
                .set_resources(Some(resources));
        } else {
            linux
                .set_seccomp(Some(seccomp::default_profile()))
                .set_masked_paths(Some(strings(MASKED_PATHS)))
                .set_readonly_paths(Some(strings(READONLY_PATHS)))
                .set_resources(None);
        }
        let mut root = Root::default();
        root.set_path(rootfs.to_path_buf())
            .set_readonly(Some(false));
        let mut spec = Spec::default();
        spec.set_version("1.0.2".into())
            .set_process(Some(self.process()))
            .set_root(Some(root))
            .set_hostname(Some(self.hostname.clone()))
            .set_mounts(Some(mounts))
            .set_annotations(None)
            .set_linux(Some(linux));
        spec
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn spec(privileged: bool, network: Network) -> ProcessSpec {
        ProcessSpec {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["A=1".into()],
            cwd: String::new(),
            user: User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
                home: "/home/app".into(),
            },
            network,
            hostname: "buildkitsandbox".into(),
            mounts: vec![ExtraMount::Tmpfs {
                target: "/cache".into(),
                size: Some(4096),
            }],
            extra_hosts: Vec::new(),
            privileged,
        }
    }

    fn json_of(p: &ProcessSpec) -> Value {
        let s = p.runtime_spec(Path::new("/r"), Path::new("/b"));
        serde_json::to_value(&s).unwrap()
    }

    fn sorted(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    /// The typed spec carries what the hand-written JSON did: the fields
    /// runc and libcontainer act on.
    #[test]
    fn runtime_spec_matches_the_isolation_kiln_promises() {
        let v = json_of(&spec(false, Network::None));
        assert_eq!(v["ociVersion"], "1.0.2");
        assert_eq!(v["root"], json!({"path": "/r", "readonly": false}));
        assert_eq!(v["hostname"], "buildkitsandbox");
        let p = &v["process"];
        assert_eq!(p["args"], json!(["/bin/sh", "-c", "true"]));
        assert_eq!(
            p["env"],
            json!(["A=1", format!("PATH={DEFAULT_PATH}"), "HOME=/home/app"])
        );
        assert_eq!(p["cwd"], "/");
        assert_eq!(p["terminal"], false);
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10]})
        );
        assert_eq!(p["noNewPrivileges"], true);
        assert!(p.get("rlimits").is_none(), "runc refuses some rlimits: {p}");
        let mut docker: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        docker.sort();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(sorted(&p["capabilities"][set]), docker, "{set}");
        }
        assert!(p["capabilities"].get("inheritable").is_none());
        assert!(p["capabilities"].get("ambient").is_none());

        let l = &v["linux"];
        let ns: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
        assert_eq!(l["devices"], json!([]));
        assert!(l.get("resources").is_none());
        assert_eq!(l["maskedPaths"].as_array().unwrap().len(), 11);
        assert_eq!(
            l["readonlyPaths"],
            json!([
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ])
        );
        let sc = &l["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ALLOW");
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                sc["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
        assert_eq!(sc["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(sc["syscalls"][0]["errnoRet"], 1);
        assert_eq!(
            sc["syscalls"][0]["names"].as_array().unwrap().len(),
            seccomp::DENIED.len()
        );

        let mounts = v["mounts"].as_array().unwrap();
        let dests: Vec<&str> = mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/cache"
            ]
        );
        assert_eq!(
            mounts[5]["options"],
            json!(["nosuid", "noexec", "nodev", "ro"])
        );
        assert_eq!(
            mounts[6],
            json!({"destination": "/etc/hosts", "type": "bind", "source": "/b/hosts", "options": ["rbind", "rprivate"]})
        );
        assert_eq!(
            mounts[9],
            json!({"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=4096"]})
        );
        assert!(v.get("annotations").is_none());

        // Privileged (RUN --security=insecure): the bounding set, no
        // filter, nothing masked, writable /sys, every device allowed.
        let v = json_of(&spec(true, Network::Host));
        let p = &v["process"];
        let mut bounding: Vec<String> = privileged_caps().iter().map(|s| s.to_string()).collect();
        bounding.retain(|c| Capability::from_str(c.trim_start_matches("CAP_")).is_ok());
        bounding.sort();
        assert_eq!(sorted(&p["capabilities"]["bounding"]), bounding);
        assert_eq!(p["noNewPrivileges"], false);
        let l = &v["linux"];
        assert!(l.get("seccomp").is_none());
        assert_eq!(l["maskedPaths"], json!([]));
        assert_eq!(l["readonlyPaths"], json!([]));
        assert_eq!(
            l["resources"],
            json!({"devices": [{"allow": true, "access": "rwm"}]})
        );
        assert_eq!(l["namespaces"].as_array().unwrap().len(), 4);
        assert_eq!(
            v["mounts"][5]["options"],
            json!(["nosuid", "noexec", "nodev", "rw"])
        );
    }
}

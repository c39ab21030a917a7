//! The process description and the OCI runtime-spec `config.json` made
//! from it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Linux, LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxPids, LinuxResources, Mount, Process, Root, Spec,
};

use crate::caps;
use crate::error::Result;
use crate::seccomp::SeccompProfile;
use crate::user::User;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The host's network (docker build's default for RUN).
    Host,
    /// A private network namespace with only loopback.
    None,
    /// A namespace made beforehand (a bridge network's, by kiln-network),
    /// joined by path, with the `/etc/hosts` and `/etc/resolv.conf` made
    /// for it.
    Joined(JoinedNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedNetwork {
    pub netns: PathBuf,
    pub hosts: String,
    pub resolv_conf: String,
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
        /// Mounted `noexec` (a container's `--tmpfs`, as docker; a
        /// build's `RUN --mount=type=tmpfs` is not).
        noexec: bool,
    },
}

/// Resource limits (`--memory`, `--cpus`, `--pids-limit`), applied through
/// the container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes (`memory.max`, `memory.limit_in_bytes`).
    pub memory: Option<i64>,
    /// Memory plus swap, bytes (`memory.memsw.limit_in_bytes`; on v2
    /// `memory.swap.max` is this minus `memory`): the runtime spec's
    /// `swap`. Set only where the host accounts swap.
    pub memory_swap: Option<i64>,
    /// CPUs in billionths (`--cpus 1.5` is 1_500_000_000): a CFS quota
    /// over a 100 ms period.
    pub nano_cpus: Option<i64>,
    /// Most tasks the container may have (`pids.max`).
    pub pids_limit: Option<i64>,
}

/// The CFS period docker uses with `--cpus`, in microseconds.
const CPU_PERIOD: u64 = 100_000;

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
    /// `/etc/hosts` before the `extra_hosts` lines, when the caller makes
    /// it (a container's, as docker writes it); `None`: localhost, the
    /// IPv6 loopback and the hostname on 127.0.1.1 (a RUN step's).
    pub hosts: Option<String>,
    /// `--add-host NAME:IP` lines appended to `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `RUN --security=insecure` (with `--allow security.insecure`): every
    /// capability, no seccomp filter, no masked paths, writable `/sys`,
    /// all device access allowed — BuildKit's insecure mode, close to
    /// docker's `--privileged` (host device nodes are not mounted).
    pub privileged: bool,
    /// The process gets a pseudo-terminal (`-t`); its master comes back
    /// from [`Executor::create_with_terminal`](crate::Executor::create_with_terminal).
    pub terminal: bool,
    /// `--cap-add`/`--cap-drop`: names with or without `CAP_`, any case,
    /// or `ALL`, applied to docker's default set.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub readonly_rootfs: bool,
    /// `no_new_privs`: setuid programs and file capabilities grant
    /// nothing. Builds set it (as BuildKit does); `docker run` does not
    /// unless `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// The filter when not privileged (privileged has none).
    pub seccomp: SeccompProfile,
    pub resources: Resources,
    /// `linux.cgroupsPath`: where the runtime makes the container's cgroup
    /// (`/kiln/<id>`); `None` leaves it to the runtime.
    pub cgroups_path: Option<String>,
}

impl Default for ProcessSpec {
    /// `docker run`'s defaults: root in `/`, no network but loopback,
    /// docker's capabilities and seccomp profile, nothing limited.
    fn default() -> ProcessSpec {
        ProcessSpec {
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            user: User::root(),
            network: Network::None,
            hostname: String::new(),
            mounts: Vec::new(),
            hosts: None,
            extra_hosts: Vec::new(),
            privileged: false,
            terminal: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            readonly_rootfs: false,
            no_new_privileges: false,
            seccomp: SeccompProfile::Default,
            resources: Resources::default(),
            cgroups_path: None,
        }
    }
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

    /// Checks what can be wrong before a container exists: capability
    /// names and a custom seccomp profile.
    pub fn validate(&self) -> Result<()> {
        caps::effective(&self.cap_add, &self.cap_drop, self.privileged)?;
        self.seccomp.validate()
    }

    /// The capability set (`CAP_…` names) the process gets.
    fn caps(&self) -> Result<Vec<String>> {
        caps::effective(&self.cap_add, &self.cap_drop, self.privileged)
    }

    /// The runtime-spec `process`: the container's init, or a process
    /// exec'd into a running container (the same shape).
    pub fn process(&self) -> Result<Process> {
        let caps = caps::capabilities(&self.caps()?);
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
        p.set_terminal(Some(self.terminal))
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
            // Absent rather than false: libcontainer loads the seccomp
            // filter while it still has CAP_SYS_ADMIN only when the field
            // is absent (with `false` it loads it after dropping
            // capabilities, and the kernel refuses). runc reads both alike.
            .set_no_new_privileges(self.no_new_privileges.then_some(true));
        Ok(p)
    }

    /// `config.json` for a bundle whose support files (`hosts`,
    /// `resolv.conf`, `hostname`) are in `bundle`.
    pub fn runtime_spec(&self, rootfs: &Path, bundle: &Path) -> Result<Spec> {
        let mut namespaces = vec![
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
        ];
        if self.network != Network::Host {
            namespaces.push(LinuxNamespaceType::Network);
        }
        let namespaces = namespaces
            .into_iter()
            .map(|t| {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(t);
                if let (LinuxNamespaceType::Network, Network::Joined(j)) = (t, &self.network) {
                    ns.set_path(Some(j.netns.clone()));
                }
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
                    "gid=5",
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
            // The container's own cgroup (runc and libcontainer bind its
            // directories on cgroup v1), so it sees its limits, as docker.
            mount("/sys/fs/cgroup", "cgroup", "cgroup", strings(&sys_options)),
            // Read-only with a read-only root, as docker binds them.
            bind(bundle.join("hosts"), "/etc/hosts", self.readonly_rootfs),
            bind(
                bundle.join("resolv.conf"),
                "/etc/resolv.conf",
                self.readonly_rootfs,
            ),
            bind(
                bundle.join("hostname"),
                "/etc/hostname",
                self.readonly_rootfs,
            ),
        ];
        for m in &self.mounts {
            mounts.push(match m {
                ExtraMount::Bind {
                    source,
                    target,
                    readonly,
                } => bind(source, target, *readonly),
                ExtraMount::Tmpfs {
                    target,
                    size,
                    noexec,
                } => {
                    // Over an existing directory, its mode (runc chmods
                    // the tmpfs to it, as docker shows); a new one, 1777.
                    let mode = crate::user::dir_mode_in_root(rootfs, target).unwrap_or(0o1777);
                    let mut options = strings(&["nosuid", "nodev"]);
                    options.push(format!("mode={mode:o}"));
                    if *noexec {
                        options.push("noexec".into());
                    }
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
            .set_gid_mappings(None)
            .set_cgroups_path(self.cgroups_path.as_ref().map(PathBuf::from));
        let mut resources = self.resources.linux();
        if self.privileged {
            let mut all = LinuxDeviceCgroup::default();
            all.set_allow(true).set_access(Some("rwm".into()));
            resources
                .get_or_insert_with(LinuxResources::default)
                .set_devices(Some(vec![all]));
            linux
                .set_seccomp(None)
                .set_masked_paths(Some(Vec::new()))
                .set_readonly_paths(Some(Vec::new()));
        } else {
            // Every device denied but those the runtime allows by default
            // (null, zero, full, random, urandom, tty, console, ptmx, tun,
            // pts, and mknod of any): docker's first rule. runc denies
            // the rest without it; libcontainer on cgroup v1 does not, and
            // a container (CAP_MKNOD is a default) could open the host's
            // disks through a node it makes.
            let mut deny = LinuxDeviceCgroup::default();
            deny.set_allow(false).set_access(Some("rwm".into()));
            resources
                .get_or_insert_with(LinuxResources::default)
                .set_devices(Some(vec![deny]));
            linux
                .set_seccomp(self.seccomp.linux(&self.caps()?)?)
                .set_masked_paths(Some(strings(MASKED_PATHS)))
                .set_readonly_paths(Some(strings(READONLY_PATHS)));
        }
        linux.set_resources(resources);
        let mut root = Root::default();
        root.set_path(rootfs.to_path_buf())
            .set_readonly(Some(self.readonly_rootfs));
        let mut spec = Spec::default();
        spec.set_version("1.0.2".into())
            .set_process(Some(self.process()?))
            .set_root(Some(root))
            .set_hostname(Some(self.hostname.clone()))
            .set_mounts(Some(mounts))
            .set_annotations(None)
            .set_linux(Some(linux));
        Ok(spec)
    }

    /// The bundle's support files, made for this run.
    pub(crate) fn support_files(&self) -> Vec<(&'static str, String)> {
        if let Network::Joined(j) = &self.network {
            return vec![
                ("hosts", j.hosts.clone()),
                ("resolv.conf", j.resolv_conf.clone()),
                ("hostname", format!("{}\n", self.hostname)),
            ];
        }
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
                let mut hosts = self.hosts.clone().unwrap_or_else(|| {
                    format!(
                        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                        self.hostname
                    )
                });
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

impl Resources {
    /// `linux.resources`, or `None` when nothing is limited.
    fn linux(&self) -> Option<LinuxResources> {
        if *self == Resources::default() {
            return None;
        }
        let mut r = LinuxResources::default();
        if self.memory.is_some() || self.memory_swap.is_some() {
            let mut m = LinuxMemory::default();
            m.set_limit(self.memory).set_swap(self.memory_swap);
            r.set_memory(Some(m));
        }
        if let Some(nano) = self.nano_cpus {
            let mut c = LinuxCpu::default();
            // docker: quota = nano_cpus * period / 1e9.
            let quota = i128::from(nano) * i128::from(CPU_PERIOD) / 1_000_000_000;
            c.set_period(Some(CPU_PERIOD))
                .set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
            r.set_cpu(Some(c));
        }
        if let Some(limit) = self.pids_limit {
            let mut p = LinuxPids::default();
            p.set_limit(limit);
            r.set_pids(Some(p));
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests;

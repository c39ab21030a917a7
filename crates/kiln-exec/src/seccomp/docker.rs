//! docker's seccomp profile format (what `--security-opt seccomp=FILE`
//! reads and what [`super::default`] holds) and its conversion to a
//! runtime spec's `linux.seccomp`, as moby's `setupSeccomp` does it: the
//! architectures of the native arch's `archMap` entry, and each rule kept
//! only when its `includes` hold and its `excludes` do not (capabilities
//! of the container's bounding set, architecture, kernel version).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde_json::Value;

use crate::error::{ExecError, Result};

/// A rule of the builtin table ([`super::default`]).
pub(crate) struct StaticRule {
    /// Whitespace-separated.
    pub(crate) names: &'static str,
    /// `None`: allow; `Some(errno)`: fail with it.
    pub(crate) errno: Option<u32>,
    pub(crate) args: &'static [StaticArg],
    pub(crate) includes: StaticCond,
    pub(crate) excludes: StaticCond,
}

pub(crate) struct StaticArg {
    pub(crate) index: usize,
    pub(crate) value: u64,
    pub(crate) value_two: u64,
    /// libseccomp's name (`SCMP_CMP_MASKED_EQ`).
    pub(crate) op: &'static str,
}

pub(crate) struct StaticCond {
    pub(crate) caps: &'static [&'static str],
    /// Go's architecture names (`amd64`, `arm64`), as docker writes them.
    pub(crate) arches: &'static [&'static str],
    pub(crate) min_kernel: Option<(u32, u32)>,
}

/// What a rule depends on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Cond {
    caps: Vec<String>,
    arches: Vec<String>,
    min_kernel: Option<(u32, u32)>,
}

/// One rule of a docker-format profile.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    syscall: LinuxSyscall,
    includes: Cond,
    excludes: Cond,
}

/// A docker-format profile, read but not yet applied to a container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    default_action: LinuxSeccompAction,
    default_errno: Option<u32>,
    /// `architectures`: used as they are.
    architectures: Vec<Arch>,
    /// `archMap`: only the native architecture's entry is used.
    arch_map: Vec<(Arch, Vec<Arch>)>,
    flags: Vec<LinuxSeccompFilterFlag>,
    rules: Vec<Rule>,
}

/// Where a container runs: what the rules' conditions are checked against.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// Go's name of the native architecture.
    pub(crate) arch: &'static str,
    pub(crate) native: Option<Arch>,
    pub(crate) kernel: (u32, u32),
}

impl Host {
    pub(crate) fn current() -> Host {
        let (arch, native) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
            "x86" => ("x86", Some(Arch::ScmpArchX86)),
            "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
            "arm" => ("arm", Some(Arch::ScmpArchArm)),
            "riscv64" => ("riscv64", Some(Arch::ScmpArchRiscv64)),
            "s390x" => ("s390x", Some(Arch::ScmpArchS390x)),
            "powerpc64" if cfg!(target_endian = "little") => {
                ("ppc64le", Some(Arch::ScmpArchPpc64le))
            }
            "powerpc64" => ("ppc64", Some(Arch::ScmpArchPpc64)),
            _ => ("", None),
        };
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        Host {
            arch,
            native,
            kernel: kernel_version(&release).unwrap_or((0, 0)),
        }
    }
}

/// `6.1.0-13-amd64` → (6, 1).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn seccomp_name<T: serde::de::DeserializeOwned>(name: &str) -> Result<T> {
    serde_json::from_value(Value::String(name.to_string()))
        .map_err(|_| ExecError::Seccomp(format!("unknown seccomp name {name:?}")))
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ExecError::Seccomp(format!("{what} must list strings")))
            })
            .collect(),
        Some(_) => Err(ExecError::Seccomp(format!("{what} must be a list"))),
    }
}

fn errno(v: Option<&Value>) -> Result<Option<u32>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ExecError::Seccomp(format!("invalid errnoRet {n}"))),
    }
}

fn cond(v: Option<&Value>) -> Result<Cond> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Cond::default());
    };
    let min_kernel = match v.get("minKernel").and_then(Value::as_str) {
        None | Some("") => None,
        Some(k) => Some(
            kernel_version(k)
                .ok_or_else(|| ExecError::Seccomp(format!("invalid minKernel {k:?}")))?,
        ),
    };
    Ok(Cond {
        caps: strings(v.get("caps"), "caps")?,
        arches: strings(v.get("arches"), "arches")?,
        min_kernel,
    })
}

impl Cond {
    fn of(c: &StaticCond) -> Cond {
        Cond {
            caps: c.caps.iter().map(|s| s.to_string()).collect(),
            arches: c.arches.iter().map(|s| s.to_string()).collect(),
            min_kernel: c.min_kernel,
        }
    }
}

fn syscall(
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names)
        .set_action(action)
        .set_errno_ret(errno)
        .set_args((!args.is_empty()).then_some(args));
    s
}

/// An `archMap` entry; `None` for an architecture this spec library has
/// no name for (loongarch64): it is not this host's, and docker uses only
/// the native entry.
fn map_entry(arch: &str, subs: Vec<String>) -> Result<Option<(Arch, Vec<Arch>)>> {
    let Ok(native) = seccomp_name::<Arch>(arch) else {
        return Ok(None);
    };
    let subs = subs
        .iter()
        .map(|s| seccomp_name(s))
        .collect::<Result<Vec<Arch>>>()?;
    Ok(Some((native, subs)))
}

impl Profile {
    /// The builtin table.
    pub(crate) fn of_table(
        rules: &[StaticRule],
        arch_map: &[(&str, &[&str])],
        default_errno: u32,
    ) -> Result<Profile> {
        let mut out = Vec::new();
        for r in rules {
            let args = r
                .args
                .iter()
                .map(|a| {
                    LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(seccomp_name::<LinuxSeccompOperator>(a.op)?)
                        .build()
                        .map_err(|e| ExecError::Seccomp(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let (action, errno) = match r.errno {
                None => (LinuxSeccompAction::ScmpActAllow, None),
                Some(e) => (LinuxSeccompAction::ScmpActErrno, Some(e)),
            };
            out.push(Rule {
                syscall: syscall(
                    r.names.split_whitespace().map(str::to_string).collect(),
                    action,
                    errno,
                    args,
                ),
                includes: Cond::of(&r.includes),
                excludes: Cond::of(&r.excludes),
            });
        }
        let arch_map = arch_map
            .iter()
            .filter_map(|(a, subs)| {
                map_entry(a, subs.iter().map(|s| s.to_string()).collect()).transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Profile {
            default_action: LinuxSeccompAction::ScmpActErrno,
            default_errno: Some(default_errno),
            architectures: Vec::new(),
            arch_map,
            flags: Vec::new(),
            rules: out,
        })
    }

    /// A docker-format profile file's JSON.
    pub(crate) fn parse(v: &Value) -> Result<Profile> {
        if !v.is_object() {
            return Err(ExecError::Seccomp("a profile is a JSON object".into()));
        }
        let default_action = match v.get("defaultAction").and_then(Value::as_str) {
            Some(a) => seccomp_name(a)?,
            None => {
                return Err(ExecError::Seccomp(
                    "the profile has no defaultAction".into(),
                ))
            }
        };
        let architectures = strings(v.get("architectures"), "architectures")?
            .iter()
            .map(|a| seccomp_name(a))
            .collect::<Result<Vec<Arch>>>()?;
        let mut arch_map = Vec::new();
        if let Some(Value::Array(entries)) = v.get("archMap") {
            for e in entries {
                let arch = e
                    .get("architecture")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ExecError::Seccomp("an archMap entry needs architecture".into())
                    })?;
                let subs = strings(e.get("subArchitectures"), "subArchitectures")?;
                arch_map.extend(map_entry(arch, subs)?);
            }
        }
        if !architectures.is_empty() && !arch_map.is_empty() {
            return Err(ExecError::Seccomp(
                "both 'architectures' and 'archMap' are specified: use one".into(),
            ));
        }
        let flags = strings(v.get("flags"), "flags")?
            .iter()
            .map(|f| seccomp_name(f))
            .collect::<Result<_>>()?;
        let mut rules = Vec::new();
        for s in v
            .get("syscalls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut names = strings(s.get("names"), "names")?;
            if let Some(name) = s.get("name").and_then(Value::as_str) {
                if !names.is_empty() {
                    return Err(ExecError::Seccomp(
                        "both 'name' and 'names' are specified: use one".into(),
                    ));
                }
                names.push(name.to_string());
            }
            let action = match s.get("action").and_then(Value::as_str) {
                Some(a) => seccomp_name(a)?,
                None => return Err(ExecError::Seccomp(format!("rule {names:?} has no action"))),
            };
            let args = match s.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(a) => serde_json::from_value(a.clone()).map_err(|e| {
                    ExecError::Seccomp(format!("invalid args of rule {names:?}: {e}"))
                })?,
            };
            rules.push(Rule {
                syscall: syscall(names, action, errno(s.get("errnoRet"))?, args),
                includes: cond(s.get("includes"))?,
                excludes: cond(s.get("excludes"))?,
            });
        }
        Ok(Profile {
            default_action,
            default_errno: errno(v.get("defaultErrnoRet"))?,
            architectures,
            arch_map,
            flags,
            rules,
        })
    }

    /// The runtime spec's filter for a container with bounding set `caps`
    /// (`CAP_…` names) on `host`.
    pub(crate) fn apply(&self, caps: &[String], host: &Host) -> LinuxSeccomp {
        let mut architectures = self.architectures.clone();
        if let Some((native, subs)) = self.arch_map.iter().find(|(a, _)| Some(*a) == host.native) {
            architectures.push(*native);
            architectures.extend(subs);
        }
        let has = |c: &String| caps.contains(c);
        let syscalls = self
            .rules
            .iter()
            .filter(|r| {
                let ex = &r.excludes;
                let excluded = ex.arches.iter().any(|a| a == host.arch)
                    || ex.caps.iter().any(has)
                    || ex.min_kernel.is_some_and(|k| host.kernel >= k);
                let inc = &r.includes;
                let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == host.arch))
                    && inc.caps.iter().all(has)
                    && inc.min_kernel.is_none_or(|k| host.kernel >= k);
                !excluded && included
            })
            .map(|r| r.syscall.clone())
            .collect();
        let mut out = LinuxSeccomp::default();
        out.set_default_action(self.default_action)
            .set_default_errno_ret(self.default_errno)
            .set_architectures(Some(architectures))
            .set_flags((!self.flags.is_empty()).then(|| self.flags.clone()))
            .set_syscalls(Some(syscalls));
        out
    }
}

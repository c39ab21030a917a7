//! Capabilities: docker's default set, `--cap-add`/`--cap-drop` applied
//! to it as docker applies them, and the privileged set.

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability};

use crate::error::{ExecError, Result};

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

/// Names (`CAP_CHOWN`) to oci-spec's capabilities; a name this oci-spec
/// does not know is left out rather than failing the step.
pub(crate) fn capabilities(names: &[String]) -> Capabilities {
    names
        .iter()
        .filter_map(|n| Capability::from_str(n.strip_prefix("CAP_").unwrap_or(n)).ok())
        .collect()
}

/// A `--cap-add`/`--cap-drop` name in docker's form: upper case, with
/// `CAP_`; `None` for `ALL`. Names the kernel headers do not have are
/// refused, as docker refuses them.
fn normalize(name: &str) -> Result<Option<String>> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(None);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if CAPS_BY_BIT.contains(&full.as_str()) {
        Ok(Some(full))
    } else {
        Err(ExecError::Capability(name.to_string()))
    }
}

fn normalize_all(names: &[String]) -> Result<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut all = false;
    for n in names {
        match normalize(n)? {
            Some(c) => out.push(c),
            None => all = true,
        }
    }
    Ok((out, all))
}

/// The capability set (`CAP_…` names) of a container: every one the host
/// allows when privileged, else docker's defaults with `drop` removed and
/// `add` added, as moby's `TweakCapabilities` does (`ALL` in `add` is
/// every capability but those dropped; `ALL` in `drop` leaves only those
/// added).
pub(crate) fn effective(add: &[String], drop: &[String], privileged: bool) -> Result<Vec<String>> {
    let (add, add_all) = normalize_all(add)?;
    let (drop, drop_all) = normalize_all(drop)?;
    if privileged {
        return Ok(strings(&privileged_caps()));
    }
    let mut caps: Vec<String> = if add_all {
        privileged_caps()
            .into_iter()
            .map(str::to_string)
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop_all {
        add
    } else {
        let mut caps: Vec<String> = DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        caps.extend(add);
        caps
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

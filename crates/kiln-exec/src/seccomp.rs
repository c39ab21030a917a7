//! The default seccomp profile for build steps.
//!
//! Docker's default profile is an allow-list of ~350 syscalls with
//! argument filters; kiln's is the equivalent deny-list of the syscalls
//! that profile refuses to an unprivileged container (kernel modules and
//! kexec, keyrings, mount and namespace manipulation, clock setting, BPF
//! and perf, cross-process memory access, reboot, swap, quotas,
//! userfaultfd, handle-based opens). Everything else is allowed, as in
//! docker; refused calls fail with EPERM rather than killing the step.
//! A deny-list stays valid across kernels and architectures where an
//! allow-list must track every new syscall.

use serde_json::{json, Value};

pub const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "move_mount",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "userfaultfd",
];

/// The `linux.seccomp` section of a runtime spec.
pub fn default_profile() -> Value {
    let architectures: &[&str] = match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => &[],
    };
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures,
        "syscalls": [{
            "names": DENIED,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1
        }]
    })
}

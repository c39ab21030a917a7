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

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

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
pub fn default_profile() -> LinuxSeccomp {
    let architectures = match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        _ => Vec::new(),
    };
    let mut denied = LinuxSyscall::default();
    denied
        .set_names(DENIED.iter().map(|s| s.to_string()).collect())
        .set_action(LinuxSeccompAction::ScmpActErrno)
        // EPERM, as docker's profile answers.
        .set_errno_ret(Some(1));
    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActAllow)
        .set_architectures(Some(architectures))
        .set_syscalls(Some(vec![denied]));
    profile
}

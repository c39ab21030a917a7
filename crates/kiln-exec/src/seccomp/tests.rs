#![allow(clippy::unwrap_used)]
use super::docker::{Host, Profile};
use super::*;
use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::json;

fn caps(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn docker_defaults() -> Vec<String> {
    caps(crate::caps::DEFAULT_CAPS)
}

/// Every rule allowing `name` (with its argument filters, if any).
fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a oci_spec::runtime::LinuxSyscall> {
    p.syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

fn allowed_unconditionally(p: &LinuxSeccomp, name: &str) -> bool {
    rules_for(p, name)
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
}

fn amd64() -> Host {
    Host {
        arch: "amd64",
        native: Some(Arch::ScmpArchX86_64),
        kernel: (6, 1),
    }
}

/// docker's profile: everything not listed fails with EPERM, the common
/// syscalls are listed, and the dangerous ones only with their capability.
#[test]
fn the_default_is_dockers_allow_list() {
    let p = default_profile(&docker_defaults());
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    for name in [
        "read", "write", "openat", "execve", "chown", "setuid", "socket",
    ] {
        assert!(!rules_for(&p, name).is_empty(), "{name}");
    }
    for name in ["read", "execve", "chroot"] {
        assert!(allowed_unconditionally(&p, name), "{name}");
    }
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "bpf",
        "reboot",
        "init_module",
        "syslog",
        "clock_settime",
        "kcmp",
        "open_by_handle_at",
        "perf_event_open",
        "keyctl",
        "add_key",
        "swapon",
    ] {
        assert!(!allowed_unconditionally(&p, name), "{name} is allowed");
    }
    // clone only without namespace flags; clone3 answers ENOSYS so libc
    // falls back to clone.
    let clone = rules_for(&p, "clone");
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(
            p.architectures().as_ref().unwrap(),
            &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two(), arg.op()),
            (
                0,
                0x7E02_0000,
                Some(0),
                LinuxSeccompOperator::ScmpCmpMaskedEq
            )
        );
        assert!(allowed_unconditionally(&p, "arch_prctl"));
    }
    let clone3 = rules_for(&p, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(
        (clone3[0].action(), clone3[0].errno_ret()),
        (LinuxSeccompAction::ScmpActErrno, Some(38))
    );
}

/// The capability-conditional entries follow the final capability set.
#[test]
fn capabilities_open_their_syscalls() {
    let mut with_admin = docker_defaults();
    with_admin.push("CAP_SYS_ADMIN".into());
    let p = default_profile(&with_admin);
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "sethostname",
    ] {
        assert!(allowed_unconditionally(&p, name), "{name}");
    }
    assert!(rules_for(&p, "clone3")
        .iter()
        .all(|s| s.action() == LinuxSeccompAction::ScmpActAllow));
    assert!(!allowed_unconditionally(&p, "reboot"));
    // Not in docker's profile at all, whatever the capabilities.
    assert!(!allowed_unconditionally(&p, "pivot_root"));

    let p = default_profile(&caps(&["CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_BOOT"]));
    for name in [
        "kcmp",
        "process_vm_readv",
        "ptrace",
        "clock_settime",
        "reboot",
    ] {
        assert!(allowed_unconditionally(&p, name), "{name}");
    }
    assert!(!allowed_unconditionally(&p, "mount"));
    // Without CAP_SYS_CHROOT, no chroot (docker lists it under that cap).
    let p = default_profile(&caps(&[]));
    assert!(!allowed_unconditionally(&p, "chroot"));
}

/// Every name in the table parses (actions, operators, architectures).
#[test]
fn the_table_is_valid_for_every_host() {
    for (arch, native) in [
        ("arm64", Arch::ScmpArchAarch64),
        ("s390x", Arch::ScmpArchS390x),
        ("amd64", Arch::ScmpArchX86_64),
    ] {
        let host = Host {
            arch,
            native: Some(native),
            kernel: (4, 4),
        };
        let p = Profile::of_table(default::RULES, default::ARCH_MAP, default::DEFAULT_ERRNO)
            .unwrap()
            .apply(&docker_defaults(), &host);
        assert_eq!(p.architectures().as_ref().unwrap()[0], native);
        // Before 4.8, ptrace needs CAP_SYS_PTRACE (docker's minKernel).
        assert!(!allowed_unconditionally(&p, "ptrace"), "{arch}");
        let s390_clone = rules_for(&p, "clone")[0].args().as_ref().unwrap()[0].index();
        assert_eq!(s390_clone, if arch == "s390x" { 1 } else { 0 }, "{arch}");
    }
}

/// A docker-format profile file becomes the runtime spec's filter, its
/// conditions applied as docker applies them.
#[test]
fn custom_profiles_convert_from_dockers_format() {
    let file = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_LOONGARCH64", "subArchitectures": null}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"name": "personality", "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["not_on_amd64"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["new_kernel"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "excludes": {"caps": ["CAP_FOWNER"]}}
        ]
    });
    let p = Profile::parse(&file)
        .unwrap()
        .apply(&caps(&["CAP_FOWNER"]), &amd64());
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v,
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"}
            ]
        })
    );
    let p = Profile::parse(&file)
        .unwrap()
        .apply(&caps(&["CAP_SYS_ADMIN"]), &amd64());
    let names: Vec<String> = p
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .flat_map(|s| s.names().clone())
        .collect();
    assert_eq!(
        names,
        ["read", "write", "personality", "mount", "kill", "chmod"]
    );

    // As a ProcessSpec setting.
    let spec = crate::ProcessSpec {
        seccomp: SeccompProfile::Custom(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        })),
        ..crate::ProcessSpec::default()
    };
    spec.validate().unwrap();
    let s = spec
        .runtime_spec(std::path::Path::new("/r"), std::path::Path::new("/b"))
        .unwrap();
    let sc = serde_json::to_value(s.linux().as_ref().unwrap().seccomp()).unwrap();
    assert_eq!(sc["defaultAction"], "SCMP_ACT_ALLOW");
    assert_eq!(sc["syscalls"][0]["names"], json!(["mkdir"]));
}

#[test]
fn unreadable_profiles_are_refused() {
    for (bad, says) in [
        (json!([]), "object"),
        (json!({"syscalls": []}), "defaultAction"),
        (json!({"defaultAction": "SCMP_ACT_NOPE"}), "SCMP_ACT_NOPE"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}),
            "both",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                   "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}),
            "both",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"]}]}),
            "no action",
        ),
    ] {
        let e = SeccompProfile::Custom(bad.clone()).validate().unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
        assert_eq!(e.kind(), kiln_core::ErrorKind::InvalidInput);
    }
}

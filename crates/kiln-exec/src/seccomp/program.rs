//! A runtime spec's `linux.seccomp` compiled once: the BPF program
//! libseccomp makes of it, cached on disk under a digest of the profile,
//! the architecture and libseccomp's version, and loaded with one
//! `seccomp(2)` call by the builtin runtime (`builtin/filter.rs`).
//!
//! libcontainer compiles the profile with libseccomp in every container's
//! init, about 7 ms for docker's profile on every `run`, and gives
//! exec'd processes no filter at all; a cached program costs a file read.
//! The compilation mirrors libcontainer 0.7's `seccomp::initialize_seccomp`
//! rule for rule (same translation of actions, operators and
//! architectures, same skipping of names the host's libseccomp does not
//! know, same splitting of rules that compare one argument twice), and the
//! program is libseccomp's own export of the filter it would have loaded.

use std::collections::HashSet;
use std::io::{Read, Seek};
use std::path::Path;

use libcontainer::oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator,
};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// Bumped when the compilation changes, so older programs are not reused.
const FORMAT: &str = "kiln-seccomp-1";

/// Whether a precompiled program can stand in for libcontainer's loading
/// of `seccomp`: no filter flags (options of the load itself: log, tsync,
/// spec-allow) and no notify action (its fd goes to a listener). Other
/// profiles are left to libcontainer.
pub(crate) fn precompilable(seccomp: &LinuxSeccomp) -> bool {
    seccomp.flags().as_ref().is_none_or(|f| f.is_empty())
        && seccomp.listener_path().is_none()
        && seccomp.default_action() != LinuxSeccompAction::ScmpActNotify
        && seccomp
            .syscalls()
            .iter()
            .flatten()
            .all(|s| s.action() != LinuxSeccompAction::ScmpActNotify)
}

/// The BPF program for `seccomp` (native-endian `struct sock_filter`s),
/// from `cache` (a directory, made if missing) or compiled and stored
/// there.
pub(crate) fn cached(cache: &Path, seccomp: &LinuxSeccomp) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(seccomp).map_err(|e| format!("seccomp profile: {e}"))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut key = format!("{FORMAT}\0{}\0{version}\0", std::env::consts::ARCH).into_bytes();
    key.extend_from_slice(&json);
    let name = format!("{}.bpf", kiln_core::Digest::sha256(&key).hex());
    let path = cache.join(&name);
    if let Ok(program) = std::fs::read(&path) {
        if valid(&program) {
            return Ok(program);
        }
    }
    let ctx = compile(seccomp)?;
    std::fs::create_dir_all(cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(".bpf-")
        .tempfile_in(cache)
        .map_err(|e| format!("create a file in {}: {e}", cache.display()))?;
    ctx.export_bpf(file.as_file())
        .map_err(|e| format!("export the seccomp filter: {e}"))?;
    let mut program = Vec::new();
    file.as_file_mut()
        .rewind()
        .and_then(|()| file.as_file_mut().read_to_end(&mut program))
        .map_err(|e| format!("read the exported seccomp filter: {e}"))?;
    if !valid(&program) {
        return Err(format!(
            "libseccomp exported a {}-byte seccomp filter",
            program.len()
        ));
    }
    // Another process may have stored the same program meanwhile: the
    // rename replaces it with identical bytes.
    file.persist(&path)
        .map_err(|e| format!("store {}: {e}", path.display()))?;
    Ok(program)
}

/// A whole number of 8-byte instructions, within the kernel's limit.
fn valid(program: &[u8]) -> bool {
    !program.is_empty() && program.len().is_multiple_of(8) && program.len() / 8 <= 4096
}

/// Installs `program` as a seccomp filter of the calling thread, as
/// libseccomp's `seccomp_load` does with no filter flags: the caller has
/// no_new_privs set, or CAP_SYS_ADMIN.
#[allow(unsafe_code)]
pub(crate) fn load(program: &[u8]) -> std::io::Result<()> {
    if !valid(program) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a seccomp program",
        ));
    }
    let filter: Vec<libc::sock_filter> = program
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect();
    let prog = libc::sock_fprog {
        // At most 4096 instructions (`valid`).
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter.len()` initialized instructions that
    // outlive the call; the kernel copies the program and keeps no pointer.
    // No Rust crate in the dependency tree wraps this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn err(what: &str) -> impl Fn(libseccomp::error::SeccompError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// libcontainer's filter for `seccomp`, not loaded.
fn compile(seccomp: &LinuxSeccomp) -> Result<ScmpFilterContext, String> {
    let default_action = action(seccomp.default_action(), seccomp.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default_action).map_err(err("create a seccomp filter"))?;
    for &a in seccomp.architectures().iter().flatten() {
        ctx.add_arch(arch(a))
            .map_err(|e| format!("add architecture {a:?}: {e}"))?;
    }
    // no_new_privs is the spec's business, not the filter's.
    ctx.set_ctl_nnp(false).map_err(err("seccomp filter"))?;
    for rule in seccomp.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default_action {
            continue;
        }
        for name in rule.names() {
            // A name the host's libseccomp does not know is a syscall the
            // kernel is too old for: skipped, as libcontainer and runc do.
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let what = format!("add the seccomp rule for {name}");
            let add = err(&what);
            match rule.args() {
                Some(args) => {
                    let mut seen = HashSet::new();
                    let mut duplicate = false;
                    let cmps: Vec<ScmpArgCompare> = args
                        .iter()
                        .map(|a| {
                            duplicate |= !seen.insert(a.index());
                            ScmpArgCompare::new(
                                a.index() as u32,
                                op(a.op(), a.value_two()),
                                a.value(),
                            )
                        })
                        .collect();
                    if duplicate {
                        for c in &cmps {
                            ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                                .map_err(&add)?;
                        }
                    } else {
                        ctx.add_rule_conditional(act, sc, &cmps).map_err(&add)?;
                    }
                }
                None => {
                    ctx.add_rule(act, sc).map_err(&add)?;
                }
            }
        }
    }
    Ok(ctx)
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, String> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            errno
                .try_into()
                .map_err(|_| format!("seccomp trace action: errno {errno} out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
    })
}

fn op(op: LinuxSeccompOperator, datum_b: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(datum_b.unwrap_or(0)),
    }
}

fn arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

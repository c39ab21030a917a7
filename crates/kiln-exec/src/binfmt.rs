//! Running foreign-architecture images through QEMU user emulation.
//!
//! The kernel runs an arm64 binary on an amd64 host when binfmt_misc has a
//! handler for arm64 ELF files that names a QEMU interpreter. For that to
//! work *inside a container* the handler needs the `F` flag: the kernel
//! opens the interpreter when the handler is registered, so the container's
//! root (which has no QEMU) is never searched for it. Debian's
//! `qemu-user-static` ships such handlers (`/usr/lib/binfmt.d/qemu-*.conf`,
//! flags `OPF`), registered at boot by systemd-binfmt.
//!
//! [`check`] says before anything runs whether a platform can run here:
//! natively, through a registered `F` handler, or not, with the exact
//! package to install or command to run. It mounts binfmt_misc when it is
//! not mounted (as docker's binfmt helper does). The directory is a
//! parameter so the rules are tested on a fake one.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_core::Platform;

/// Where the kernel shows binfmt_misc.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// How a platform's binaries run on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// The CPU runs them.
    Native,
    /// Through this binfmt_misc handler's interpreter.
    Emulated {
        handler: String,
        interpreter: PathBuf,
    },
}

/// Why a platform cannot run here; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinfmtError {
    #[error("cannot run linux/{arch} binaries: kiln knows no QEMU emulator for that architecture")]
    UnknownArchitecture { arch: String },
    #[error("cannot run {platform} binaries on this {host} host: no binfmt_misc handler {handler} is registered; install Debian's qemu-user-static (apt-get install qemu-user-static) and register its handlers (/lib/systemd/systemd-binfmt /usr/lib/binfmt.d/{handler}.conf, or reboot so systemd does)")]
    NoHandler {
        platform: String,
        host: String,
        handler: String,
    },
    #[error("cannot run {platform} binaries: the binfmt_misc handler {handler} is disabled; enable it with `echo 1 > {dir}/{handler}`")]
    Disabled {
        platform: String,
        handler: String,
        dir: String,
    },
    #[error("cannot run {platform} binaries in containers: the binfmt_misc handler {handler} lacks the F (fix-binary) flag, so the kernel would look for {interpreter} inside the image; register Debian qemu-user-static's handler instead (echo -1 > {dir}/{handler}; /lib/systemd/systemd-binfmt /usr/lib/binfmt.d/{handler}.conf)")]
    NotFixed {
        platform: String,
        handler: String,
        interpreter: String,
        dir: String,
    },
    #[error("cannot run {platform} binaries: binfmt_misc is not mounted at {dir} and mounting it failed ({reason}); run `mount -t binfmt_misc binfmt_misc {dir}` as root")]
    NotMounted {
        platform: String,
        dir: String,
        reason: String,
    },
}

impl BinfmtError {
    pub fn kind(&self) -> kiln_core::ErrorKind {
        kiln_core::ErrorKind::Unsupported
    }
}

/// The binfmt handler name Debian's qemu-user-static registers for a
/// Go/OCI architecture name.
pub fn qemu_handler(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "arm64" => "qemu-aarch64",
        "arm" => "qemu-arm",
        "riscv64" => "qemu-riscv64",
        "ppc64le" => "qemu-ppc64le",
        "ppc64" => "qemu-ppc64",
        "s390x" => "qemu-s390x",
        "mips64le" => "qemu-mips64el",
        "mips64" => "qemu-mips64",
        "mipsle" => "qemu-mipsel",
        "mips" => "qemu-mips",
        "loong64" => "qemu-loongarch64",
        "386" => "qemu-i386",
        "amd64" => "qemu-x86_64",
        _ => return None,
    })
}

/// Whether the host's CPU runs `arch` itself (an amd64 kernel runs 386,
/// an arm64 one usually runs arm).
fn native(host: &Platform, arch: &str) -> bool {
    arch == host.architecture
        || (host.architecture == "amd64" && arch == "386")
        || (host.architecture == "arm64" && arch == "arm")
}

/// Whether `platform` runs on `host`, looking at binfmt_misc in `dir`
/// (mounted there first when it is [`BINFMT_DIR`] and not mounted).
pub fn check(platform: &Platform, host: &Platform, dir: &Path) -> Result<Execution, BinfmtError> {
    if native(host, &platform.architecture) {
        return Ok(Execution::Native);
    }
    let handler =
        qemu_handler(&platform.architecture).ok_or_else(|| BinfmtError::UnknownArchitecture {
            arch: platform.architecture.clone(),
        })?;
    if !dir.join("register").exists() && dir == Path::new(BINFMT_DIR) {
        mount_binfmt(dir).map_err(|reason| BinfmtError::NotMounted {
            platform: platform.to_string(),
            dir: dir.display().to_string(),
            reason,
        })?;
    }
    let Ok(text) = fs::read_to_string(dir.join(handler)) else {
        return Err(BinfmtError::NoHandler {
            platform: platform.to_string(),
            host: host.to_string(),
            handler: handler.to_string(),
        });
    };
    let mut enabled = false;
    let mut interpreter = PathBuf::new();
    let mut flags = String::new();
    for line in text.lines() {
        if line == "enabled" {
            enabled = true;
        } else if let Some(i) = line.strip_prefix("interpreter ") {
            interpreter = PathBuf::from(i);
        } else if let Some(f) = line.strip_prefix("flags:") {
            flags = f.trim().to_string();
        }
    }
    if !enabled {
        return Err(BinfmtError::Disabled {
            platform: platform.to_string(),
            handler: handler.to_string(),
            dir: dir.display().to_string(),
        });
    }
    if !flags.contains('F') {
        return Err(BinfmtError::NotFixed {
            platform: platform.to_string(),
            handler: handler.to_string(),
            interpreter: interpreter.display().to_string(),
            dir: dir.display().to_string(),
        });
    }
    Ok(Execution::Emulated {
        handler: handler.to_string(),
        interpreter,
    })
}

fn mount_binfmt(dir: &Path) -> Result<(), String> {
    rustix::mount::mount(
        "binfmt_misc",
        dir,
        "binfmt_misc",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    fn arm64() -> Platform {
        Platform::new("linux", "arm64", None)
    }

    fn handler(dir: &Path, name: &str, enabled: bool, flags: &str) {
        let state = if enabled { "enabled" } else { "disabled" };
        fs::write(
            dir.join(name),
            format!("{state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\nmagic 7f454c46\nmask ffffffff\n"),
        )
        .unwrap();
    }

    #[test]
    fn the_hosts_own_architecture_and_386_run_natively() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(&amd64(), &amd64(), dir.path()), Ok(Execution::Native));
        let i386 = Platform::new("linux", "386", None);
        assert_eq!(check(&i386, &amd64(), dir.path()), Ok(Execution::Native));
    }

    #[test]
    fn a_foreign_platform_needs_an_enabled_handler_with_the_f_flag() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("register"), "").unwrap();
        let err = check(&arm64(), &amd64(), dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("apt-get install qemu-user-static"),
            "{err}"
        );
        assert!(err.to_string().contains("qemu-aarch64.conf"), "{err}");

        handler(dir.path(), "qemu-aarch64", true, "OC");
        let err = check(&arm64(), &amd64(), dir.path()).unwrap_err();
        assert!(matches!(err, BinfmtError::NotFixed { .. }), "{err}");

        handler(dir.path(), "qemu-aarch64", false, "OCF");
        let err = check(&arm64(), &amd64(), dir.path()).unwrap_err();
        assert!(matches!(err, BinfmtError::Disabled { .. }), "{err}");

        handler(dir.path(), "qemu-aarch64", true, "POF");
        let ok = check(&arm64(), &amd64(), dir.path()).unwrap();
        assert_eq!(
            ok,
            Execution::Emulated {
                handler: "qemu-aarch64".into(),
                interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P".into()
            }
        );

        let odd = Platform::new("linux", "vax", None);
        assert!(matches!(
            check(&odd, &amd64(), dir.path()),
            Err(BinfmtError::UnknownArchitecture { .. })
        ));
    }
}

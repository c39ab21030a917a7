//! Seccomp filters: docker's default profile, no filter, or a profile file
//! in docker's format (`--security-opt seccomp=…`).
//!
//! The default is docker's own profile, an allow-list: every syscall not
//! listed fails with EPERM, and some are allowed only with the capability
//! that makes them meaningful (`mount`, `unshare`, `setns` with
//! CAP_SYS_ADMIN; `ptrace`-like calls with CAP_SYS_PTRACE on old kernels;
//! `clone` without namespace flags unless CAP_SYS_ADMIN). The conditions
//! are checked against the container's final capability set (after
//! `--cap-add`/`--cap-drop`), as docker does. Names the host's libseccomp
//! does not know are skipped by both runc and libcontainer, so the list
//! may name syscalls newer than the host.

mod default;
mod docker;
pub(crate) mod program;

use oci_spec::runtime::LinuxSeccomp;

use crate::error::Result;
use docker::{Host, Profile};

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeccompProfile {
    /// docker's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A docker-format profile file's JSON (`defaultAction`, `syscalls`
    /// with `names`, `action`, `args`, `includes`/`excludes`,
    /// `architectures` or `archMap`).
    Custom(serde_json::Value),
}

/// docker's default profile for a container whose bounding set is `caps`
/// (`CAP_…` names).
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    let profile = Profile::of_table(default::RULES, default::ARCH_MAP, default::DEFAULT_ERRNO);
    // The table's names are fixed; a unit test parses every one.
    profile
        .expect("the builtin seccomp table is valid")
        .apply(caps, &Host::current())
}

impl SeccompProfile {
    /// Checks a custom profile can be read, before any container exists.
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            SeccompProfile::Custom(v) => Profile::parse(v).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The runtime spec's `linux.seccomp` for bounding set `caps`; `None`
    /// for no filter.
    pub(crate) fn linux(&self, caps: &[String]) -> Result<Option<LinuxSeccomp>> {
        Ok(match self {
            SeccompProfile::Default => Some(default_profile(caps)),
            SeccompProfile::Unconfined => None,
            SeccompProfile::Custom(v) => Some(Profile::parse(v)?.apply(caps, &Host::current())),
        })
    }
}

#[cfg(test)]
mod tests;

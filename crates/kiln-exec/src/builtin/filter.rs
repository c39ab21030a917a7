//! The builtin runtime's seccomp filter, precompiled
//! ([`crate::seccomp::program`]) and installed by the container's process
//! itself just before `execve`: for the init, and for exec'd processes,
//! which libcontainer 0.7 leaves unfiltered (its tenant builder drops
//! `linux.seccomp`; runc applies the container's filter to them).
//!
//! libcontainer's workload [`Executor`] is the one hook that runs in the
//! container's process before `execve`, but it runs after the
//! capabilities are dropped, and a process without no_new_privs (docker's
//! default) needs CAP_SYS_ADMIN to install a filter. So libcontainer gets
//! a copy of the spec (`<bundle>/builtin/config.json`, or a copy of
//! exec's `process.json`) without `linux.seccomp` and with CAP_SYS_ADMIN
//! and CAP_SETPCAP added to the bounding, effective and permitted sets;
//! the executor then installs the program and drops the capabilities to
//! the spec's own, in libcontainer's and runc's order (filter first
//! without no_new_privs, while it may still do so; last with it). The
//! program runs with what libcontainer would have given it.

use std::path::{Path, PathBuf};

use libcontainer::capabilities::drop_privileges;
use libcontainer::oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};
use libcontainer::syscall::syscall::create_syscall;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::seccomp::program;

/// The directory libcontainer's copy of a bundle's spec goes in.
const BUNDLE_COPY: &str = "builtin";

/// Runs the process's program after installing its filter and dropping
/// the capabilities added for that.
#[derive(Clone)]
pub(super) struct FilterExecutor {
    program: Vec<u8>,
    /// The spec's capabilities (`None`: the spec drops none).
    caps: Option<LinuxCapabilities>,
    no_new_privs: bool,
}

impl Executor for FilterExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| ExecutorError::Other(format!("{what}: {e}"));
        let drop_caps = || match &self.caps {
            Some(caps) => drop_privileges(caps, create_syscall().as_ref())
                .map_err(|e| fail("drop capabilities", &e)),
            None => Ok(()),
        };
        let load = || program::load(&self.program).map_err(|e| fail("load seccomp filter", &e));
        if self.no_new_privs {
            drop_caps()?;
            load()?;
        } else {
            load()?;
            drop_caps()?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// What libcontainer is given to create a container from `bundle`: the
/// bundle to read (a copy of it without the filter, when the filter is
/// precompiled) and the executor that installs the filter.
pub(super) fn init(
    root: &Path,
    bundle: &Path,
) -> Result<(PathBuf, Option<FilterExecutor>), String> {
    let config = bundle.join("config.json");
    let mut spec = Spec::load(&config).map_err(|e| format!("read {}: {e}", config.display()))?;
    let Some(program) = filter_of(root, &spec)? else {
        return Ok((bundle.to_path_buf(), None));
    };
    let Some(process) = spec.process_mut() else {
        return Ok((bundle.to_path_buf(), None));
    };
    let executor = executor(program, process);
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
    }
    // The copy lives one level down: a relative root stays the bundle's.
    if let Some(root) = spec.root_mut() {
        if root.path().is_relative() {
            let path = bundle.join(root.path());
            root.set_path(path);
        }
    }
    let copy = bundle.join(BUNDLE_COPY);
    std::fs::create_dir_all(&copy).map_err(|e| format!("create {}: {e}", copy.display()))?;
    spec.save(copy.join("config.json"))
        .map_err(|e| format!("write {}/config.json: {e}", copy.display()))?;
    Ok((copy, Some(executor)))
}

/// What libcontainer is given to exec `process_file` in container `id`
/// whose bundle libcontainer knows as `bundle`: the process file to read
/// (a copy, in `root`, removed when dropped) and the executor that
/// installs the container's filter. Without a precompilable filter, the
/// process file as it is.
pub(super) fn exec(
    root: &Path,
    bundle: &Path,
    process_file: &Path,
) -> Result<(Option<tempfile::NamedTempFile>, Option<FilterExecutor>), String> {
    let bundle = if bundle.ends_with(BUNDLE_COPY) {
        bundle.parent().unwrap_or(bundle)
    } else {
        bundle
    };
    let config = bundle.join("config.json");
    let spec = Spec::load(&config).map_err(|e| format!("read {}: {e}", config.display()))?;
    let Some(program) = filter_of(root, &spec)? else {
        return Ok((None, None));
    };
    let text =
        std::fs::read(process_file).map_err(|e| format!("read {}: {e}", process_file.display()))?;
    let mut process: Process = serde_json::from_slice(&text)
        .map_err(|e| format!("read {}: {e}", process_file.display()))?;
    let executor = executor(program, &mut process);
    let copy = tempfile::Builder::new()
        .prefix(".process-")
        .suffix(".json")
        .tempfile_in(root)
        .map_err(|e| format!("create a process file in {}: {e}", root.display()))?;
    let json = serde_json::to_vec(&process).map_err(|e| format!("process: {e}"))?;
    std::fs::write(copy.path(), json)
        .map_err(|e| format!("write {}: {e}", copy.path().display()))?;
    Ok((Some(copy), Some(executor)))
}

/// The precompiled program of `spec`'s filter, if it has one that can be.
fn filter_of(root: &Path, spec: &Spec) -> Result<Option<Vec<u8>>, String> {
    match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) if program::precompilable(s) => {
            program::cached(&root.join(".seccomp"), s).map(Some)
        }
        _ => Ok(None),
    }
}

/// The executor for `process` and `program`; `process` is changed to
/// keep CAP_SYS_ADMIN and CAP_SETPCAP until the executor runs.
fn executor(program: Vec<u8>, process: &mut Process) -> FilterExecutor {
    let caps = process.capabilities().clone();
    if let Some(mut wide) = caps.clone() {
        let add = |set: &Option<_>| {
            set.as_ref()
                .map(|s: &std::collections::HashSet<Capability>| {
                    let mut s = s.clone();
                    s.extend([Capability::SysAdmin, Capability::Setpcap]);
                    s
                })
        };
        let (b, e, p) = (
            add(wide.bounding()),
            add(wide.effective()),
            add(wide.permitted()),
        );
        wide.set_bounding(b).set_effective(e).set_permitted(p);
        process.set_capabilities(Some(wide));
    }
    FilterExecutor {
        program,
        caps,
        no_new_privs: process.no_new_privileges() == Some(true),
    }
}

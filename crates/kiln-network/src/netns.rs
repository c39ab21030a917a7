//! Named network namespaces as `ip netns add`/`del` make them, without
//! running `ip`: a namespace is kept alive by a bind mount of its
//! `ns/net` file on `/run/netns/NAME`, the path a runtime spec joins and
//! `ip netns` itself lists.

use std::io;
use std::path::Path;

use rustix::io::Errno;
use rustix::mount::{self, MountPropagationFlags, UnmountFlags};

const NETNS_RUN_DIR: &str = "/run/netns";

/// `/run/netns` made a shared mount point, as `ip netns add` does, so a
/// namespace mounted there later is seen in mount namespaces copied from
/// the host's before it (a runtime's, a DNS responder's).
fn shared_run_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_RUN_DIR)?;
    let shared = MountPropagationFlags::SHARED | MountPropagationFlags::REC;
    match mount::mount_change(NETNS_RUN_DIR, shared) {
        // Not a mount point yet: bind it on itself first.
        Err(Errno::INVAL) => {
            mount::mount_bind_recursive(NETNS_RUN_DIR, NETNS_RUN_DIR)?;
            mount::mount_change(NETNS_RUN_DIR, shared)?;
            Ok(())
        }
        r => r.map_err(Into::into),
    }
}

/// unshare(2) of the calling thread's network namespace alone.
#[allow(unsafe_code)]
fn unshare_net() -> io::Result<()> {
    // SAFETY: rustix marks unshare unsafe for CLONE_FILES and CLONE_FS,
    // which change what other code on this thread may assume about its
    // descriptors and working directory; CLONE_NEWNET changes neither.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(Into::into)
}

/// Makes the empty namespace `/run/netns/NAME` (its loopback down, as a
/// new namespace has it). The namespace is made on a thread of its own
/// that unshares and ends, so none of kiln's threads moves.
pub(crate) fn create(name: &str) -> io::Result<()> {
    shared_run_dir()?;
    let path = Path::new(NETNS_RUN_DIR).join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let made = std::thread::scope(|s| {
        s.spawn(|| {
            unshare_net()?;
            mount::mount_bind("/proc/thread-self/ns/net", &path).map_err(io::Error::from)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Removes namespace NAME's mount and file; a missing one is not an
/// error. The namespace itself ends with its last process.
pub(crate) fn delete(name: &str) -> io::Result<()> {
    let path = Path::new(NETNS_RUN_DIR).join(name);
    match mount::unmount(&path, UnmountFlags::DETACH) {
        // Not mounted (a crash between the file and the mount) or gone.
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

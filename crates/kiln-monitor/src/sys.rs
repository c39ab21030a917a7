//! The only unsafe code of the monitor, two things std and rustix offer
//! no safe way to do: taking over the file descriptors kiln handed over
//! across `execve` by number, and a signal handler (SIGCHLD, SIGWINCH)
//! that wakes the poll loop through a pipe.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Takes ownership of descriptor `n`, which kiln left open across
/// `execve` and named on the command line; `None` when it is not open
/// (or is one of the standard three, which are never handed over so).
pub(crate) fn adopt(n: RawFd) -> Option<OwnedFd> {
    if n < 3 {
        return None;
    }
    // SAFETY: F_GETFD on any number only reads the descriptor's flags.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return None;
    }
    // Close-on-exec from now on: a probe's kiln must not inherit the
    // output pipes or a stdin keeper (held descriptors are made
    // inheritable again just before the exec back into kiln).
    // SAFETY: setting a flag of an open descriptor.
    unsafe { libc::fcntl(n, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open (checked above) and nothing in this
    // process owns it: kiln handed it over, named once on the command
    // line (the caller adopts each number once).
    Some(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The write end of the wake-up pipe, for the handler.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let byte = signal as u8;
    // SAFETY: errno is thread-local and saved around write(2), which is
    // async-signal-safe; `fd` is the non-blocking pipe the main loop
    // polls (a full pipe already has a wake-up waiting).
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// Each of `signals` writes its number (one byte) to `wake` (kept open by
/// the caller for the process's life).
pub(crate) fn wake_on(signals: &[i32], wake: &OwnedFd) -> std::io::Result<()> {
    WAKE.store(wake.as_raw_fd(), Ordering::Relaxed);
    for &s in signals {
        // SAFETY: a zeroed sigaction is a valid starting value; the
        // handler only calls async-signal-safe functions.
        let failed = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(s, &sa, std::ptr::null_mut()) != 0
        };
        if failed {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unmaps the pages of this process's read-only file mappings (the text
/// of this program, libc and the loader) that hold no private copy:
/// start-up touched many that the idle loop never runs, and each counts
/// in the resident set of every monitor although it is the page cache's,
/// shared (fault-around maps 16 pages per fault). They stay in the page
/// cache; what the loop runs is mapped again on its first use. Mappings
/// with anonymous (copied-on-write) pages — relocated read-only data —
/// are left alone: dropping those would bring back the file's bytes.
pub(crate) fn trim_file_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    let drop_it = |range: Option<(usize, usize)>| {
        if let Some((start, end)) = range {
            // SAFETY: the range is a whole mapping of this process that
            // is private, not writable, file-backed and has no anonymous
            // page: MADV_DONTNEED only unmaps page-cache pages, which
            // fault back in with the same bytes on their next use.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                // A new mapping: `start-end perms offset dev inode path`.
                let perms = fields.next().unwrap_or("");
                let path = fields.nth(3).unwrap_or("");
                candidate = (perms.starts_with('r')
                    && perms.as_bytes().get(1) == Some(&b'-')
                    && perms.ends_with('p')
                    && path.starts_with('/'))
                .then_some((start, end));
                continue;
            }
        }
        if let Some(kib) = line.strip_prefix("Anonymous:") {
            let anonymous = kib.trim().trim_end_matches("kB").trim() != "0";
            let range = candidate.take();
            if !anonymous {
                drop_it(range);
            }
        }
    }
}

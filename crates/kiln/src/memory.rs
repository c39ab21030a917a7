//! Memory a long-running or memory-measured command can give back.
//!
//! Starting kiln touches code and read-only data it never uses again (the
//! whole CLI's argument parser and its strings, config parsing, TLS
//! setup, unwind tables), and its heap holds what the whole CLI's clap
//! command tree left freed but unreturned. Those executable pages are
//! clean and private to this mapping of the file, so they can be let go;
//! what runs afterwards is faulted back in from the file. The kernel maps
//! more than the page that faults (fault-around, 64 KiB, or a whole large
//! folio of the page cache), so code and data in use come back in blocks,
//! whatever `madvise` advice is given: what is released is the startup
//! code no later request is near. `kiln serve` does it once it listens
//! (an idle server's memory), `kiln image analyze` before it reads layers
//! (its peak is measured against dive's).

#![allow(unsafe_code)]

/// Lets go of the executable's clean pages touched so far (code and
/// read-only data; never the relocated, written ones) and returns the
/// heap's free pages to the system.
pub(crate) fn release_startup_code() {
    release_clean_executable_pages();
    trim_heap();
}

/// One mapping of `/proc/self/smaps`: its range, permissions, path and
/// whether any page in it was written (anonymous copies of file pages).
/// Not `Private_Dirty`: that also counts file pages dirty in the page
/// cache (a binary just linked, not yet written back), which unmapping
/// does not lose.
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    path: String,
    written: bool,
}

fn mappings() -> Vec<Mapping> {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A mapping's header: start-end perms offset dev inode [path].
        let range = f
            .first()
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| {
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                ))
            });
        if let (Some((start, end)), Some(perms)) = (range, f.get(1)) {
            out.push(Mapping {
                start,
                end,
                perms: perms.to_string(),
                path: f.get(5).map(|p| p.to_string()).unwrap_or_default(),
                written: false,
            });
            continue;
        }
        // Pages written (relocations in RELRO, .data) are private
        // anonymous copies; such a mapping is never dropped: its contents
        // would revert to the file's.
        if f.first() == Some(&"Anonymous:") && f.get(1).is_some_and(|n| *n != "0") {
            if let Some(m) = out.last_mut() {
                m.written = true;
            }
        }
    }
    out
}

fn release_clean_executable_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Some(exe) = exe.to_str() else {
        return;
    };
    for m in mappings() {
        let read_only = m.perms == "r-xp" || m.perms == "r--p";
        if !read_only || m.written || m.path != exe {
            continue;
        }
        let addr = m.start as *mut libc::c_void;
        // SAFETY: the range is one of this process's own private,
        // read-only mappings of its executable with no page written
        // (checked above: no anonymous or dirty page; a read-only
        // mapping cannot gain one meanwhile). MADV_DONTNEED only unmaps
        // its pages; the next access to one faults it back in, unchanged,
        // from the file. MADV_RANDOM first turns off readahead on those
        // faults.
        unsafe {
            libc::madvise(addr, m.end - m.start, libc::MADV_RANDOM);
            libc::madvise(addr, m.end - m.start, libc::MADV_DONTNEED);
        }
    }
}

/// Returns free heap pages to the system: glibc keeps what a freed
/// allocation leaves inside its heap (clap's command tree for the whole
/// CLI, say) until the top of the heap is free, which a live allocation
/// after it prevents.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory the allocator owns.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's malloc arenas for a server: by default every thread that
/// allocates may get an arena of its own (up to eight per core), each
/// keeping its freed memory, so an idle server after a burst holds one
/// heap per blocking-pool thread that ran. Two arenas serve a registry's
/// short allocations with little lock contention.
// Only `kiln-serve` (which includes this file) calls it.
#[allow(dead_code)]
pub(crate) fn limit_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt changes an allocator parameter; called before the
    // server's threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

//! Memory a long-running or memory-measured command can give back.
//!
//! Starting kiln touches code it never runs again (the whole CLI's argument
//! parser, config parsing, TLS setup), and the kernel maps 64 KiB around
//! each page touched: megabytes of resident set. Those pages are clean and
//! private to this mapping of the executable, so they can be let go; what
//! runs afterwards is faulted back a page at a time. `kiln serve` does it
//! once it listens (an idle server's memory), `kiln image analyze` before
//! it reads layers (its peak is measured against dive's).

#![allow(unsafe_code)]

/// Lets go of the executable's code pages touched so far.
pub(crate) fn release_startup_code() {
    let (Ok(exe), Ok(maps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/maps"),
    ) else {
        return;
    };
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // start-end perms offset dev inode path
        if f.len() != 6 || f[1] != "r-xp" || Some(f[5]) != exe.to_str() {
            continue;
        }
        let Some((Ok(start), Ok(end))) = f[0]
            .split_once('-')
            .map(|(a, b)| (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)))
        else {
            continue;
        };
        let addr = start as *mut libc::c_void;
        // SAFETY: the range is this process's own private, read-only
        // (never written, never relocated: position-independent code)
        // mapping of its executable. MADV_DONTNEED only unmaps its
        // pages; the next instruction fetched from one faults it back
        // in, unchanged, from the file. MADV_RANDOM first turns off
        // fault-around, so a refault maps one page, not sixteen.
        unsafe {
            libc::madvise(addr, end - start, libc::MADV_RANDOM);
            libc::madvise(addr, end - start, libc::MADV_DONTNEED);
        }
    }
}

//! One execution per step key at a time: in this process, and across
//! the processes that build in one store.
//!
//! A multi-platform build runs one build per platform in parallel threads
//! of one process; a stage that does not depend on the target platform
//! (`FROM --platform=$BUILDPLATFORM`, the cross-compile pattern) has the
//! same step keys in each of them. Without this, both builds would miss
//! the cache at the same moment and run the step twice. With it, the
//! second waits for the first, then finds its cache record: the stage runs
//! once and is shared. Steps of different keys never wait for each other.
//!
//! Two `kiln build`s of one store (two CI jobs on one machine) meet the
//! same way through [`file_lock`]: a `flock` on `buildcache/locks/<key>`,
//! as BuildKit's one daemon shares a step between its clients.
//!
//! With `--no-cache` the second build may not take a record from the
//! cache, yet it should still share the step the first has just made (as
//! BuildKit does): [`MadeHere`] is what the platforms of one build have
//! made, which `--no-cache` does not refuse.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustix::fs::{flock, FlockOperation};

/// The lock of `key`, shared by every step of that key running now (the
/// map keeps weak references, so finished keys cost nothing).
pub(crate) fn key_lock(key: &str) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Weak<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, w| w.strong_count() > 0);
    let lock = Arc::new(Mutex::new(()));
    locks.insert(key.to_string(), Arc::downgrade(&lock));
    lock
}

/// A step key's lock held across processes; released (and its file
/// removed) on drop.
pub(crate) struct FileLock {
    path: PathBuf,
    _file: File,
}

/// Takes `dir/<key>`'s lock, waiting while another process holds it.
/// `None` when the lock file cannot be made (a read-only store): the build
/// goes on, and only loses the sharing across processes.
///
/// The holder removes the file before it unlocks, so lock files do not
/// pile up; a waiter that opened the removed file finds, once it holds
/// it, that the path names another file or none, and starts again.
pub(crate) fn file_lock(dir: &Path, key: &str) -> Option<FileLock> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(key);
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ok()?;
        flock(&file, FlockOperation::LockExclusive).ok()?;
        let held = file.metadata().ok()?;
        match std::fs::metadata(&path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                return Some(FileLock { path, _file: file });
            }
            _ => continue,
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked: see `file_lock`.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The step keys the platforms of one multi-platform build have made.
#[derive(Default)]
pub(crate) struct MadeHere(Mutex<HashSet<String>>);

impl MadeHere {
    pub(crate) fn note(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn steps_of_one_key_take_turns_and_other_keys_do_not_wait() {
        let a1 = key_lock("a");
        let a2 = key_lock("a");
        assert!(Arc::ptr_eq(&a1, &a2));
        let held = a1.lock().unwrap();
        assert!(a2.try_lock().is_err(), "the same key waits");
        assert!(key_lock("b").try_lock().is_ok(), "another key does not");
        drop(held);
        assert!(a2.try_lock().is_ok());
    }

    #[test]
    fn racing_threads_run_a_key_once_when_the_second_rechecks() {
        let runs = AtomicUsize::new(0);
        let done = Mutex::new(false);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let lock = key_lock("race");
                    let _held = lock.lock().unwrap();
                    let mut d = done.lock().unwrap();
                    if !*d {
                        runs.fetch_add(1, Ordering::SeqCst);
                        *d = true;
                    }
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_file_lock_is_taken_in_turn_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20 {
                        // flock excludes other open files of the same
                        // path even within one process, as it would
                        // another process.
                        let _held = file_lock(dir.path(), "k").unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
        assert!(!dir.path().join("k").exists(), "the lock file is left");
    }

    #[test]
    fn a_lock_file_left_by_a_killed_process_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), b"").unwrap();
        let held = file_lock(dir.path(), "k").expect("an unlocked file is taken");
        drop(held);
        assert!(file_lock(dir.path(), "other").is_some());
    }
}

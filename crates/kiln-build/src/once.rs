//! One execution per step key at a time in this process.
//!
//! A multi-platform build runs one build per platform in parallel threads
//! of one process; a stage that does not depend on the target platform
//! (`FROM --platform=$BUILDPLATFORM`, the cross-compile pattern) has the
//! same step keys in each of them. Without this, both builds would miss
//! the cache at the same moment and run the step twice. With it, the
//! second waits for the first, then finds its cache record: the stage runs
//! once and is shared. Steps of different keys never wait for each other.
//!
//! With `--no-cache` the second build may not take a record from the
//! cache, yet it should still share the step the first has just made (as
//! BuildKit does): [`MadeHere`] is what the platforms of one build have
//! made, which `--no-cache` does not refuse.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};

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
}

//! The stage scheduler: runs each stage on its own thread as soon as every
//! stage it needs has finished, so one slow stage holds back only the
//! stages that need it (not, as waves would, every stage after it).
//!
//! It knows nothing about Dockerfiles: it gets the dependency map and a
//! [`StageRunner`], which is how the tests drive it with fake stages.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use crate::error::{BuildError, Result};

/// Runs one stage; the scheduler calls it from several threads at once.
/// A runner keeps what a stage produced itself (later stages read it), so
/// the scheduler only needs to know whether it worked.
pub(crate) trait StageRunner: Sync {
    fn run_stage(&self, index: usize) -> Result<()>;
}

/// Runs every stage of `deps` (stage → the stages it needs first, all of
/// them keys of `deps` too). The first error stops new stages from
/// starting; stages already running are waited for (a thread cannot be
/// stopped halfway through a step), then that error is returned.
pub(crate) fn run_stages(
    runner: &impl StageRunner,
    deps: &BTreeMap<usize, BTreeSet<usize>>,
) -> Result<()> {
    // Named early so a wrong map is an error, not a hang.
    if let Some(missing) = deps
        .values()
        .flatten()
        .find(|d| !deps.contains_key(d))
        .copied()
    {
        return Err(BuildError::Internal(format!(
            "stage {missing} is needed but not scheduled"
        )));
    }
    let mut finished: BTreeSet<usize> = BTreeSet::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut first_error: Option<BuildError> = None;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<()>)>();
        let mut running = 0usize;
        loop {
            if first_error.is_none() {
                let ready: Vec<usize> = deps
                    .iter()
                    .filter(|(i, needs)| {
                        !started.contains(*i) && needs.iter().all(|d| finished.contains(d))
                    })
                    .map(|(i, _)| *i)
                    .collect();
                for i in ready {
                    started.insert(i);
                    running += 1;
                    let tx = tx.clone();
                    s.spawn(move || {
                        // A panic must still report, or the loop below
                        // would wait for this stage forever.
                        let result = catch_unwind(AssertUnwindSafe(|| runner.run_stage(i)))
                            .unwrap_or_else(|_| {
                                Err(BuildError::Internal("a stage panicked".into()))
                            });
                        let _ = tx.send((i, result));
                    });
                }
            }
            if running == 0 {
                if first_error.is_none() && finished.len() < deps.len() {
                    first_error = Some(BuildError::Cycle);
                }
                return;
            }
            // Every running thread holds a sender: this cannot fail
            // while `running > 0`, but a closed channel must not hang.
            let Ok((i, result)) = rx.recv() else { return };
            running -= 1;
            match result {
                Ok(()) => {
                    finished.insert(i);
                }
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// A fake stage runner: each stage sleeps for its time (or fails) and
    /// the runner notes when each stage started and ended.
    struct Fake {
        sleep: BTreeMap<usize, u64>,
        fail: BTreeSet<usize>,
        t0: Instant,
        log: Mutex<Vec<(usize, &'static str, Duration)>>,
    }

    impl Fake {
        fn new(sleep: &[(usize, u64)], fail: &[usize]) -> Fake {
            Fake {
                sleep: sleep.iter().copied().collect(),
                fail: fail.iter().copied().collect(),
                t0: Instant::now(),
                log: Mutex::new(Vec::new()),
            }
        }

        fn note(&self, i: usize, what: &'static str) {
            let at = self.t0.elapsed();
            self.log.lock().unwrap().push((i, what, at));
        }

        fn at(&self, i: usize, what: &str) -> Option<Duration> {
            let log = self.log.lock().unwrap();
            log.iter()
                .find(|(j, w, _)| *j == i && *w == what)
                .map(|e| e.2)
        }
    }

    impl StageRunner for Fake {
        fn run_stage(&self, i: usize) -> Result<()> {
            self.note(i, "start");
            std::thread::sleep(Duration::from_millis(
                self.sleep.get(&i).copied().unwrap_or(0),
            ));
            self.note(i, "end");
            if self.fail.contains(&i) {
                return Err(BuildError::Internal(format!("stage {i} failed")));
            }
            Ok(())
        }
    }

    fn graph(edges: &[(usize, &[usize])]) -> BTreeMap<usize, BTreeSet<usize>> {
        edges
            .iter()
            .map(|(i, d)| (*i, d.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn a_stage_starts_after_the_stages_it_needs() {
        // 3 needs 1 and 2; 1 needs 0.
        let deps = graph(&[(0, &[]), (1, &[0]), (2, &[]), (3, &[1, 2])]);
        let fake = Fake::new(&[(0, 30), (2, 50)], &[]);
        run_stages(&fake, &deps).unwrap();
        for (stage, needs) in &deps {
            let start = fake.at(*stage, "start").unwrap();
            for n in needs {
                assert!(fake.at(*n, "end").unwrap() <= start, "{stage} before {n}");
            }
        }
        assert_eq!(fake.log.lock().unwrap().len(), 8);
    }

    #[test]
    fn a_stage_starts_while_an_unrelated_slow_one_runs() {
        // 0 is slow; 1 → 2 is a quick chain beside it. In waves, 2 would
        // wait for 0.
        let deps = graph(&[(0, &[]), (1, &[]), (2, &[1]), (3, &[0, 2])]);
        let fake = Fake::new(&[(0, 1000), (1, 10)], &[]);
        run_stages(&fake, &deps).unwrap();
        let slow_end = fake.at(0, "end").unwrap();
        assert!(fake.at(2, "start").unwrap() < slow_end);
        assert!(fake.at(2, "end").unwrap() < slow_end);
        assert!(fake.at(3, "start").unwrap() >= slow_end);
    }

    #[test]
    fn the_first_error_stops_the_build_and_is_returned() {
        // 1 fails quickly while 0 runs; 2 (needs 1) and 3 (needs 0) must
        // never start, and 0 is waited for.
        let deps = graph(&[(0, &[]), (1, &[]), (2, &[1]), (3, &[0])]);
        let fake = Fake::new(&[(0, 1000), (1, 10)], &[1, 0]);
        let err = run_stages(&fake, &deps).unwrap_err();
        assert_eq!(err.to_string(), "stage 1 failed");
        assert!(fake.at(0, "end").is_some(), "the running stage finished");
        assert!(fake.at(2, "start").is_none());
        assert!(fake.at(3, "start").is_none());
    }

    #[test]
    fn a_panicking_stage_is_an_error() {
        struct Panics;
        impl StageRunner for Panics {
            fn run_stage(&self, _: usize) -> Result<()> {
                panic!("boom")
            }
        }
        let err = run_stages(&Panics, &graph(&[(0, &[])])).unwrap_err();
        assert_eq!(err.to_string(), "a stage panicked");
    }

    #[test]
    fn cycles_are_reported() {
        // 0 runs; 1 and 2 need each other and never start.
        let deps = graph(&[(0, &[]), (1, &[2]), (2, &[1])]);
        let fake = Fake::new(&[], &[]);
        let err = run_stages(&fake, &deps).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        assert!(fake.at(0, "end").is_some());
        assert!(fake.at(1, "start").is_none());
    }

    #[test]
    fn a_needed_stage_missing_from_the_map_is_an_error() {
        let err = run_stages(&Fake::new(&[], &[]), &graph(&[(1, &[0])])).unwrap_err();
        assert!(err.to_string().contains("stage 0"), "{err}");
    }

    #[test]
    fn no_stages_is_nothing_to_do() {
        run_stages(&Fake::new(&[], &[]), &BTreeMap::new()).unwrap();
    }
}

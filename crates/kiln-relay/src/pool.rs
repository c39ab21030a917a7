//! A cached thread pool for the proxy: a connection's two copy loops run
//! on threads kept from earlier connections (a new thread only when none
//! is idle; an idle one ends after a minute), so a stream of short
//! connections does not pay two thread creations each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    tx: Mutex<Sender<Job>>,
    rx: Arc<Mutex<Receiver<Job>>>,
    /// Workers waiting for a job and not yet claimed by a submitter.
    idle: Arc<AtomicUsize>,
}

const IDLE_FOR: Duration = Duration::from_secs(60);

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        Pool {
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    })
}

/// Runs `job` on an idle worker, or on a new one.
pub(crate) fn spawn(job: impl FnOnce() + Send + 'static) {
    let p = pool();
    let claimed = p
        .idle
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    if claimed {
        // The receiver lives as long as the process.
        let _ =
            p.tx.lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(Box::new(job));
        return;
    }
    let (rx, idle) = (p.rx.clone(), p.idle.clone());
    let _ = std::thread::Builder::new()
        .name("proxy".into())
        .spawn(move || {
            job();
            worker(&rx, &idle);
        });
}

fn worker(rx: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::AcqRel);
        let job = loop {
            let next = rx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(IDLE_FOR);
            match next {
                Ok(job) => break job,
                Err(RecvTimeoutError::Timeout) => {
                    // Leave unless a submitter has just claimed us: its
                    // job is on its way.
                    if idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_run_and_threads_are_reused() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..50 {
            let tx = tx.clone();
            super::spawn(move || {
                let _ = tx.send((i, std::thread::current().id()));
            });
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let got: Vec<_> = (0..50).map(|_| rx.recv().expect("job ran")).collect();
        let threads: std::collections::BTreeSet<_> =
            got.iter().map(|(_, t)| format!("{t:?}")).collect();
        assert!(threads.len() < 50, "threads were reused: {}", threads.len());
    }
}

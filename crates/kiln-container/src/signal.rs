//! Watching signals this process receives. Signal names are
//! `kiln_core::signal` (re-exported here as [`parse`]).

pub use kiln_core::signal::parse;

/// Calls `f` with each of `signals` (numbers) this process receives, on a
/// thread of its own, for as long as the process lives: the attached
/// caller forwarding signals, the monitor resizing a terminal. Signals
/// that cannot be watched are skipped.
pub fn watch(signals: &[i32], mut f: impl FnMut(i32) + Send + 'static) {
    let signals = signals.to_vec();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for number in signals {
                let Ok(mut s) = signal(SignalKind::from_raw(number)) else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(number).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            while let Some(number) = rx.recv().await {
                f(number);
            }
        });
    });
}

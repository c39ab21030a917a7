//! The bridge between the synchronous [`Storage`](crate::Storage) methods
//! and `object_store`'s async API: the storage owns a small runtime of its
//! own, every bucket call runs there, and the caller waits for the answer.
//!
//! Why not the server's runtime: the trait's methods are synchronous (quick
//! metadata calls on a filesystem), and blocking on a future from inside a
//! runtime's worker deadlocks a current-thread runtime (every
//! `#[tokio::test]`) and panics in tokio. Running the future on another
//! runtime and waiting with `block_in_place` (when the caller is on a
//! multi-threaded runtime, so its other tasks move to other workers) keeps
//! the trait as it is for both backends. Bulk bytes do not wait like this:
//! readers and writers are channels to tasks on the storage's runtime.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

use crate::storage::BlobReader;

/// The storage's runtime. Dropping it shuts it down in the background
/// (a runtime dropped inside another one's task would panic).
pub(super) struct Bridge {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bridge")
    }
}

impl Bridge {
    pub(super) fn new() -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kiln-object-store")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Bridge {
            runtime: Some(runtime),
            handle,
        })
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `f` on the storage's runtime and waits for its output.
    pub(super) fn block<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        let wait = move || rx.recv();
        let received = match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        };
        // The task sends before it ends; it can only not send if the
        // runtime shut down under it, which happens only when `self` is
        // dropped, and `self` is borrowed here.
        #[allow(clippy::expect_used)]
        received.expect("the object storage's runtime stopped")
    }

    /// A reader of `stream`, which is polled on the storage's runtime.
    pub(super) fn reader(
        &self,
        mut stream: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    ) -> BlobReader {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        self.handle.spawn(async move {
            while let Some(item) = stream.next().await {
                let item = item.map_err(std::io::Error::other);
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(tokio_util::io::StreamReader::new(stream))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

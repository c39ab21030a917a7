//! Blobs published off the caller's critical path: a large blob (a build
//! step's layer) is made durable and moved into `blobs/` on a thread of its
//! own while the caller goes on, instead of the caller waiting out its
//! fsync.
//!
//! Crash argument. A blob only ever enters `blobs/` by a rename that comes
//! after its bytes' fsync (then its directory is fsynced), on the
//! publishing thread exactly as [`PendingBlob::commit`] does it inline: so
//! whatever finds a blob under its digest finds durable, verified bytes.
//! Until the rename the content is an ingest file (locked while alive; a
//! crash leaves it stale for GC to remove). What makes a blob reachable,
//! an index update ([`Store::update_index`], so every tag) or an image
//! written over it ([`Store::write_image`]), first waits for every
//! publication this process has under way, so no index entry can name a
//! blob that is not yet durable and in place. What may name one before it
//! is (a build's cache record and its GC root) treats a missing blob as
//! absent: after a crash the step is a cache miss, never a broken image.
//! In-process readers that miss a blob wait for the publications under way
//! and look again, so the deferral is invisible to them; and the last
//! handle of a store waits for them all, so a process that ends (even on an
//! error) finishes what it started.
//!
//! [`PendingBlob::commit`]: crate::PendingBlob::commit
//! [`Store::update_index`]: crate::Store::update_index
//! [`Store::write_image`]: crate::Store::write_image

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Result, StoreError};

type Publication = JoinHandle<Result<()>>;

/// The publications of one store's handles (shared by its clones).
#[derive(Default, Clone)]
pub(crate) struct Publications(Arc<Shared>);

#[derive(Default)]
struct Shared(Mutex<Vec<Publication>>);

impl std::fmt::Debug for Publications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Publications")
    }
}

impl Publications {
    /// Runs `publish` on its own thread, to be waited for by
    /// [`Publications::wait`].
    pub(crate) fn spawn(
        &self,
        publish: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let handle = std::thread::Builder::new()
            .name("kiln-publish".into())
            .spawn(publish)
            .map_err(|e| StoreError::Io {
                op: "start a thread to publish a blob in",
                path: PathBuf::from("blobs"),
                source: e,
            })?;
        self.0.lock().push(handle);
        Ok(())
    }

    /// Whether any publication is under way (or finished and not yet
    /// waited for).
    pub(crate) fn any(&self) -> bool {
        !self.0.lock().is_empty()
    }

    /// Waits for every publication started so far; the first failure.
    pub(crate) fn wait(&self) -> Result<()> {
        let handles = std::mem::take(&mut *self.0.lock());
        join_all(handles)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Publication>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let handles = std::mem::take(&mut *self.lock());
        if let Err(e) = join_all(handles) {
            tracing::warn!("a blob could not be published: {e}");
        }
    }
}

fn join_all(handles: Vec<Publication>) -> Result<()> {
    let mut first = Ok(());
    for h in handles {
        let r = h.join().unwrap_or_else(|_| {
            Err(StoreError::Io {
                op: "publish a blob in",
                path: PathBuf::from("blobs"),
                source: std::io::Error::other("the publishing thread panicked"),
            })
        });
        if first.is_ok() {
            first = r;
        }
    }
    first
}

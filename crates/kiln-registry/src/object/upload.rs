//! Uploads in the bucket, continued by any replica.
//!
//! An upload is a marker object (`uploads/<id>/repo`, the repository that
//! owns it; its age is the upload's age), an S3 multipart upload to
//! `uploads/<id>/mp-<nonce>` holding every whole part written so far, and a
//! *tail* object `uploads/<id>/tail-<nonce>` holding the bytes past the
//! last whole part. A PATCH streams the old tail and its body into parts of
//! [`PartList::z`] bytes (S3 wants every part but the last to be at least
//! 5 MiB, R2 wants them equal) and writes what is left as a new tail. What
//! the next request needs — the multipart id, each part's ETag, the tail's
//! nonce, the size — is the [`PartList`], which the server signs into the
//! `Location` URL; no replica remembers anything.
//!
//! Objects are never overwritten with other bytes: tails and multipart
//! targets have fresh nonces, and a part re-written by a second client
//! racing on one upload changes its ETag, so completing with the first
//! client's part list fails instead of mixing bytes.
//!
//! The digest: `sha2`'s running hash state cannot be serialised (sha2 0.10
//! has no such API), so it can neither travel in the URL nor wait in the
//! bucket. Completion therefore assembles the upload at its staging key (the
//! multipart target, or the tail alone for a small upload) and hashes that
//! object as it is read back, then copies it to `blobs/<alg>/<hex>`. The
//! price is one sequential read of the blob inside the object store's
//! network per upload; the gain is that what is verified is exactly what
//! becomes visible (the assembled object, not the bytes as they arrived),
//! whichever replicas took the chunks. No blob key ever holds a partial or
//! unverified object: a failed check deletes the staging object, and the
//! copy to the final key is a single atomic S3 operation.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

use super::{Bucket, ObjectStorage};
use crate::error::StorageError;
use crate::storage::{Result, UploadSink, UploadState};

/// An upload's state between requests (see the module doc).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct PartList {
    /// Bytes received.
    pub(super) n: u64,
    /// Part size.
    pub(super) z: u64,
    /// The multipart upload: target nonce and S3 upload id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) m: Option<(String, String)>,
    /// ETags of the whole parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) p: Vec<String>,
    /// The tail object's nonce, when there are bytes past the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) t: Option<String>,
}

impl PartList {
    pub(super) fn parse(state: &str) -> Result<PartList> {
        serde_json::from_str(state)
            .map_err(|e| StorageError::Corrupt(format!("upload state {state:?}: {e}")))
    }

    pub(super) fn encode(&self) -> UploadState {
        // A struct of strings and numbers always serialises.
        #[allow(clippy::unwrap_used)]
        serde_json::to_string(self).unwrap()
    }

    fn tail_len(&self) -> u64 {
        self.n - self.p.len() as u64 * self.z
    }
}

pub(super) fn upload_prefix(storage: &ObjectStorage, id: &str) -> Path {
    storage.key(&format!("uploads/{id}"))
}

pub(super) fn marker(storage: &ObjectStorage, id: &str) -> Path {
    storage.key(&format!("uploads/{id}/repo"))
}

fn tail_key(prefix: &Path, nonce: &str) -> Path {
    prefix.clone().join(format!("tail-{nonce}"))
}

fn mp_key(prefix: &Path, nonce: &str) -> Path {
    prefix.clone().join(format!("mp-{nonce}"))
}

fn io(what: &str, e: object_store::Error) -> StorageError {
    StorageError::io(what, std::io::Error::other(e))
}

/// Streams a PATCH's bytes into parts on the storage's runtime.
async fn write_parts(
    bucket: std::sync::Arc<dyn Bucket>,
    (prefix, marker, repo): (Path, Path, String),
    mut list: PartList,
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Result<PartList> {
    let mut buf = BytesMut::new();
    if let Some(nonce) = &list.t {
        let old = bucket
            .get(&tail_key(&prefix, nonce))
            .await
            .map_err(|e| io("the upload's tail", e))?
            .bytes()
            .await
            .map_err(|e| io("the upload's tail", e))?;
        if old.len() as u64 != list.tail_len() {
            return Err(StorageError::Corrupt(format!(
                "the upload's tail has {} bytes, its state says {}",
                old.len(),
                list.tail_len()
            )));
        }
        buf.extend_from_slice(&old);
    }
    let mut received = 0u64;
    while let Some(chunk) = rx.recv().await {
        received += chunk.len() as u64;
        buf.extend_from_slice(&chunk);
        while buf.len() as u64 >= list.z {
            let part = buf.split_to(list.z as usize).freeze();
            let (nonce, upload) = match &list.m {
                Some(m) => m.clone(),
                None => {
                    let nonce = super::random_hex()?;
                    let upload = bucket
                        .create_multipart(&mp_key(&prefix, &nonce))
                        .await
                        .map_err(|e| io("start a multipart upload", e))?;
                    // Recorded so that a cancel without the state (GC of
                    // an abandoned upload) can abort it.
                    bucket
                        .put(
                            &prefix.clone().join(format!("mp-{nonce}.id")),
                            PutPayload::from(upload.clone().into_bytes()),
                        )
                        .await
                        .map_err(|e| io("record the multipart upload", e))?;
                    list.m = Some((nonce.clone(), upload.clone()));
                    (nonce, upload)
                }
            };
            let id = bucket
                .put_part(
                    &mp_key(&prefix, &nonce),
                    &upload,
                    list.p.len(),
                    PutPayload::from_bytes(part),
                )
                .await
                .map_err(|e| io("write a part of the upload", e))?;
            list.p.push(id.content_id);
        }
    }
    if received == 0 {
        return Ok(list);
    }
    // The upload's age for GC is its marker's: refresh it (parts of an
    // open multipart upload are not listed objects).
    bucket
        .put(&marker, PutPayload::from(repo.into_bytes()))
        .await
        .map_err(|e| io("refresh the upload's marker", e))?;
    list.n += received;
    list.t = if buf.is_empty() {
        None
    } else {
        let nonce = super::random_hex()?;
        bucket
            .put(
                &tail_key(&prefix, &nonce),
                PutPayload::from_bytes(buf.freeze()),
            )
            .await
            .map_err(|e| io("write the upload's tail", e))?;
        Some(nonce)
    };
    Ok(list)
}

/// The [`UploadSink`] of the object storage: a channel to [`write_parts`].
pub(super) struct PartWriter {
    tx: PollSender<Bytes>,
    task: JoinHandle<Result<PartList>>,
    done: Option<UploadState>,
}

impl PartWriter {
    pub(super) fn start(
        storage: &ObjectStorage,
        repo: &str,
        id: &str,
        list: PartList,
    ) -> PartWriter {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let task = storage.bridge.handle().spawn(write_parts(
            storage.bucket.clone(),
            (
                upload_prefix(storage, id),
                marker(storage, id),
                repo.to_string(),
            ),
            list,
            rx,
        ));
        PartWriter {
            tx: PollSender::new(tx),
            task,
            done: None,
        }
    }

    /// The writing task's end: its part list, or why it failed.
    fn poll_task(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<UploadState>> {
        let out = ready!(Pin::new(&mut self.task).poll(cx));
        Poll::Ready(match out {
            Ok(Ok(list)) => Ok(list.encode()),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(e) => Err(std::io::Error::other(e)),
        })
    }
}

use std::future::Future as _;

impl AsyncWrite for PartWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if ready!(this.tx.poll_reserve(cx)).is_err()
            || this.tx.send_item(Bytes::copy_from_slice(buf)).is_err()
        {
            // The task stopped taking bytes: it failed; say why.
            return match ready!(this.poll_task(cx)) {
                Err(e) => Poll::Ready(Err(e)),
                Ok(_) => Poll::Ready(Err(std::io::Error::other("the upload's writer stopped"))),
            };
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.done.is_some() {
            return Poll::Ready(Ok(()));
        }
        this.tx.close();
        let state = ready!(this.poll_task(cx))?;
        this.done = Some(state);
        Poll::Ready(Ok(()))
    }
}

impl UploadSink for PartWriter {
    fn state(&self) -> UploadState {
        self.done.clone().unwrap_or_default()
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // A writer dropped before shutdown (a failed request): stop its
        // task now, or it would go on writing parts under numbers the
        // client's retry (from the state before this request) writes
        // again, and a late part would replace the retry's. Should a part
        // request already on the wire still land after the retry's, its
        // ETag differs from the one in the retry's state and completing
        // fails (`InvalidPart`): the upload must be restarted, but no
        // wrong byte is stored.
        if self.done.is_none() {
            self.task.abort();
        }
    }
}

/// Assembles the upload at its staging key: the tail as the last part of
/// the multipart upload (completed), or the tail alone. `None` for an
/// upload with no bytes.
pub(super) async fn stage(
    bucket: std::sync::Arc<dyn Bucket>,
    prefix: Path,
    list: PartList,
) -> Result<Option<Path>> {
    let Some((nonce, upload)) = &list.m else {
        return Ok(list.t.as_ref().map(|t| tail_key(&prefix, t)));
    };
    let target = mp_key(&prefix, nonce);
    // Completed already (an earlier attempt that failed later, or
    // `open_upload` before `finish_upload`)? A multipart target only
    // ever holds its own completion.
    if let Ok(meta) = bucket.head(&target).await {
        if meta.size == list.n {
            return Ok(Some(target));
        }
    }
    let mut parts: Vec<object_store::multipart::PartId> = list
        .p
        .iter()
        .map(|e| object_store::multipart::PartId {
            content_id: e.clone(),
        })
        .collect();
    if let Some(t) = &list.t {
        let tail = bucket
            .get(&tail_key(&prefix, t))
            .await
            .map_err(|e| io("the upload's tail", e))?
            .bytes()
            .await
            .map_err(|e| io("the upload's tail", e))?;
        let id = bucket
            .put_part(&target, upload, parts.len(), PutPayload::from_bytes(tail))
            .await
            .map_err(|e| io("write the upload's last part", e))?;
        parts.push(id);
    }
    bucket
        .complete_multipart(&target, upload, parts)
        .await
        .map_err(|e| io("complete the multipart upload", e))?;
    Ok(Some(target))
}

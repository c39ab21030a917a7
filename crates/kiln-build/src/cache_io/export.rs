//! What `--cache-to` exports: the records of the steps this build
//! resolved, all of them (`mode=max`) or those of the stages the image is
//! made of (`mode=min`, and `type=inline`), each with its layer as the
//! image has it. A step of a stage kept as snapshots only gets its layer
//! written now, through the same path a later hit would take.

use std::collections::HashSet;

use super::format::{CacheMetadata, StepRecord};
use super::spec::Mode;
use crate::cache::{CacheRecord, Made};
use crate::engine::Engine;
use crate::error::Result;

impl Engine<'_> {
    /// The metadata of the steps resolved so far, for `mode`.
    pub(crate) fn cache_metadata(&self, mode: Mode) -> Result<CacheMetadata> {
        let used = self
            .remote
            .used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lazy = self.snapshot_only.get().cloned().unwrap_or_default();
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        for u in used {
            if (mode == Mode::Min && lazy.contains(&u.stage)) || !seen.insert(u.key.clone()) {
                continue;
            }
            let Some(rec) = self.exportable(&u.key)? else {
                continue;
            };
            let (layer, diff_id) = match rec.layer {
                Some(Made::Blob(l, d)) => (Some(*l), Some(d)),
                _ => (None, None),
            };
            records.push(StepRecord {
                key: u.key,
                input_key: u.input_key,
                parent: u.parent,
                layer,
                diff_id,
                history: u.history,
                left_out: rec.left_out,
            });
        }
        Ok(CacheMetadata {
            version: 1,
            mode: mode.name().to_string(),
            records,
        })
    }

    /// The local record of `key` with its layer in the store: an imported
    /// layer not fetched yet is fetched, a snapshot-only layer written.
    /// `None` when there is nothing usable to export.
    fn exportable(&self, key: &str) -> Result<Option<CacheRecord>> {
        if let Some((_, r)) = self.remote.records_get(key) {
            if let Some(l) = &r.layer {
                self.fetch_imported(std::slice::from_ref(l))?;
            }
        }
        let Some(rec) = self.cache.get(key) else {
            return Ok(None);
        };
        Ok(match &rec.layer {
            Some(Made::SnapshotOnly(_)) => match &rec.snapshot {
                Some(s) if self.snaps.hold(s)? => {
                    Some(self.write_snapshot_layer(key, rec.clone(), s)?)
                }
                _ => None,
            },
            _ => Some(rec),
        })
    }
}

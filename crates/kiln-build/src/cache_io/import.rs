//! Using an imported cache (`--cache-from`): its records by key, looked up
//! when the local cache misses, and its layers fetched only when the build
//! needs their bytes (to unpack a state a later step runs on or a `--from`
//! reads, or to write the final image), never at the hit itself.

use std::collections::HashMap;
use std::sync::Mutex;

use kiln_core::image::Descriptor;
use kiln_core::Digest;
use kiln_store::Store;
use serde_json::Value;

use super::format::{CacheMetadata, StepRecord};
use crate::cache::{CacheRecord, Made};
use crate::engine::Engine;
use crate::error::{BuildError, Result};
use crate::state::StageState;

/// Where an imported cache's layers come from: a registry (the CLI's
/// client) or an OCI layout ([`super::layout::open`]).
pub trait CacheSource: Send + Sync {
    /// The reference or directory, for messages.
    fn name(&self) -> String;
    /// Puts `layer` into the store as the record names it (a plain tar:
    /// its digest is its diff_id), verified.
    fn fetch(&self, layer: &Descriptor, store: &Store) -> std::result::Result<(), String>;
}

/// A cache read for `--cache-from`: its metadata (read before the build)
/// and where its layers are. Cloned into every platform's request of a
/// multi-platform build: the source is shared, read once.
#[derive(Clone)]
pub struct ImportedCache {
    pub metadata: CacheMetadata,
    pub source: std::sync::Arc<dyn CacheSource>,
}

/// A step the build resolved (hit or run), for export.
#[derive(Debug, Clone)]
pub(crate) struct UsedStep {
    pub stage: usize,
    pub key: String,
    /// `COPY --from`'s input key that led to `key`.
    pub input_key: Option<String>,
    pub parent: String,
    pub history: Value,
}

/// A layer an imported record gave the build, not fetched yet.
struct Pending {
    source: usize,
    key: String,
    layer: Descriptor,
    diff_id: Digest,
    left_out: Vec<String>,
}

/// The imported records and what the build did with them.
#[derive(Default)]
pub(crate) struct Remote {
    /// Key → (index of the source in the request, record); the first
    /// source listing a key wins, as with repeated `--cache-from`.
    records: HashMap<String, (usize, StepRecord)>,
    /// `COPY --from` input key → step key, from the records' `inputKey`.
    inputs: HashMap<String, String>,
    pending: Mutex<HashMap<Digest, Pending>>,
    pub used: Mutex<Vec<UsedStep>>,
}

impl Remote {
    pub(crate) fn new(imported: &[ImportedCache]) -> Remote {
        let mut records = HashMap::new();
        let mut inputs = HashMap::new();
        for (i, c) in imported.iter().enumerate() {
            for r in &c.metadata.records {
                if let Some(input) = &r.input_key {
                    inputs.entry(input.clone()).or_insert_with(|| r.key.clone());
                }
                records
                    .entry(r.key.clone())
                    .or_insert_with(|| (i, r.clone()));
            }
        }
        Remote {
            records,
            inputs,
            ..Remote::default()
        }
    }

    pub(crate) fn records_get(&self, key: &str) -> Option<&(usize, StepRecord)> {
        self.records.get(key)
    }

    /// The step key an imported record gives for `COPY --from`'s input
    /// key.
    pub(crate) fn key_of_input(&self, input_key: &str) -> Option<String> {
        self.inputs.get(input_key).cloned()
    }

    pub(crate) fn note(&self, step: UsedStep) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(step);
    }
}

impl Engine<'_> {
    /// A local miss that an imported record answers: its layer goes onto
    /// `state` (fetched later, when needed); whether it made a layer, or
    /// `None` for a miss. A record whose history line is not the one this
    /// build writes is not used (another kiln wrote it differently).
    pub(crate) fn remote_hit(
        &self,
        state: &mut StageState,
        key: &str,
        history: &str,
    ) -> Result<Option<bool>> {
        let Some((source, rec)) = self.remote.records.get(key) else {
            return Ok(None);
        };
        if rec.history["created_by"].as_str() != Some(history) {
            return Ok(None);
        }
        let (layer, diff_id) = match (&rec.layer, &rec.diff_id) {
            (None, _) => {
                self.cache.put(key, &CacheRecord::empty())?;
                return Ok(Some(false));
            }
            // A stage whose files are an unwritten snapshot cannot stack a
            // layer on it: run the step.
            _ if state.snapshot_top.is_some() => return Ok(None),
            (Some(l), Some(d)) => (l.clone(), d.clone()),
            (Some(l), None) => (l.clone(), l.digest.clone()),
        };
        if !self.store.blobs().exists(&layer.digest) {
            self.remote
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(layer.digest.clone())
                .or_insert(Pending {
                    source: *source,
                    key: key.to_string(),
                    layer: layer.clone(),
                    diff_id: diff_id.clone(),
                    left_out: rec.left_out.clone(),
                });
        } else {
            self.record_fetched(key, &layer, &diff_id, &rec.left_out)?;
        }
        state.push_layer(layer, diff_id);
        Ok(Some(true))
    }

    /// Fetches the imported layers among `layers` that are not in the
    /// store yet, and records each in the local cache. One fetch at a time
    /// (stages that need the same layer wait for the one download).
    pub(crate) fn fetch_imported(&self, layers: &[Descriptor]) -> Result<()> {
        let mut pending = self
            .remote
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return Ok(());
        }
        for l in layers {
            let Some(p) = pending.get(&l.digest) else {
                continue;
            };
            if !self.store.blobs().exists(&p.layer.digest) {
                let src = &self.req.cache_from[p.source].source;
                src.fetch(&p.layer, self.store)
                    .map_err(|problem| BuildError::Cache {
                        source_name: src.name(),
                        problem,
                    })?;
                if !self.store.blobs().exists(&p.layer.digest) {
                    return Err(BuildError::Cache {
                        source_name: src.name(),
                        problem: format!("layer {} was not stored", p.layer.digest),
                    });
                }
            }
            self.record_fetched(&p.key, &p.layer, &p.diff_id, &p.left_out)?;
            pending.remove(&l.digest);
        }
        Ok(())
    }

    /// The local record of an imported step, so the next build hits here.
    fn record_fetched(
        &self,
        key: &str,
        layer: &Descriptor,
        diff_id: &Digest,
        left_out: &[String],
    ) -> Result<()> {
        self.cache.put(
            key,
            &CacheRecord {
                layer: Some(Made::Blob(Box::new(layer.clone()), diff_id.clone())),
                snapshot: None,
                left_out: left_out.to_vec(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Nowhere;

    impl CacheSource for Nowhere {
        fn name(&self) -> String {
            "nowhere".into()
        }
        fn fetch(&self, _: &Descriptor, _: &Store) -> std::result::Result<(), String> {
            Err("no layers here".into())
        }
    }

    fn imported(key: &str, layer: Option<u8>) -> ImportedCache {
        let layer = layer.map(|b| Descriptor::of(kiln_core::media_types::OCI_LAYER_TAR, &[b; 4]));
        ImportedCache {
            metadata: CacheMetadata {
                version: 1,
                mode: "max".into(),
                records: vec![StepRecord {
                    key: key.into(),
                    input_key: None,
                    parent: String::new(),
                    diff_id: layer.as_ref().map(|l| l.digest.clone()),
                    layer,
                    history: json!({"created_by": "RUN x"}),
                    left_out: vec![],
                }],
            },
            source: std::sync::Arc::new(Nowhere),
        }
    }

    #[test]
    fn the_first_source_listing_a_key_wins() {
        let r = Remote::new(&[
            imported("k", Some(1)),
            imported("k", None),
            imported("j", None),
        ]);
        let (source, rec) = r.records_get("k").unwrap();
        assert_eq!(*source, 0);
        assert!(rec.layer.is_some());
        assert_eq!(r.records_get("j").unwrap().0, 2);
        assert!(r.records_get("other").is_none());
    }
}

//! The end of a build: `--label`s, the image's own timestamp, and what
//! describes a container rather than an image dropped; then the config,
//! manifest and tags into the store.

use kiln_core::Digest;
use serde_json::json;

use crate::engine::{rfc3339, BuildResult, Engine};
use crate::error::{BuildError, Result};
use crate::state::StageState;

impl Engine<'_> {
    /// The final image: labels, defaults, timestamps, into the store.
    pub(crate) fn finish(&self, mut state: StageState) -> Result<BuildResult> {
        if state.snapshot_top.is_some() {
            // `snapshot_only_stages` never picks the target's FROM chain.
            return Err(BuildError::Internal(
                "the target stage has layers that were not written".into(),
            ));
        }
        if !self.req.labels.is_empty() {
            let labels = state.cfg().entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            for (k, v) in &self.req.labels {
                labels[k] = json!(v);
            }
        }
        if self.req.inline_cache {
            let meta = self.cache_metadata(crate::cache_io::Mode::Min)?;
            state.config[crate::cache_io::INLINE_KEY] = json!(meta);
        }
        state.config["created"] = json!(rfc3339(self.epoch));
        state
            .config
            .as_object_mut()
            .map(|m| m.remove("container_config"));
        state.config.as_object_mut().map(|m| m.remove("container"));
        let bytes =
            serde_json::to_vec(&state.config).map_err(|e| BuildError::Internal(e.to_string()))?;
        self.fetch_imported(&state.layers)?;
        let entry = self.store.write_image(&bytes, &state.layers)?;
        self.store.name_image(&entry, &self.req.tags)?;
        Ok(BuildResult {
            id: Digest::sha256(&bytes),
            epoch: self.epoch,
            entry,
            config: bytes,
            layers: state.layers,
            cache: None,
        })
    }
}

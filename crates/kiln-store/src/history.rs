//! An image's history matched to its layers, as `docker history` shows it:
//! each history entry that is not `empty_layer` owns the next layer,
//! bottom up, and its size is that layer's content size.

use kiln_core::Digest;
use serde_json::Value;

use crate::error::Result;
use crate::{Image, Store};

/// One history entry with the layer it made, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryStep {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// The layer this step made (`None` for metadata-only steps).
    pub layer: Option<Digest>,
    /// The layer's uncompressed size (0 without a layer).
    pub size: u64,
}

impl Store {
    pub fn history(&self, image: &Image) -> Result<Vec<HistoryStep>> {
        let raw: Value = serde_json::from_slice(&image.config_bytes).unwrap_or(Value::Null);
        let entries = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let layers = image.layer_digests()?;
        let mut next_layer = layers.iter();
        let mut steps = Vec::with_capacity(entries.len());
        for h in &entries {
            let text = |k: &str| {
                h.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let layer = if empty {
                None
            } else {
                next_layer.next().cloned()
            };
            let size = match &layer {
                Some(l) => self.layer_size(l)?,
                None => 0,
            };
            let created = text("created");
            steps.push(HistoryStep {
                created: (!created.is_empty()).then_some(created),
                created_by: text("created_by"),
                comment: text("comment"),
                layer,
                size,
            });
        }
        Ok(steps)
    }
}

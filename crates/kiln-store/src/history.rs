//! An image's history matched to its layers, as `docker history` shows it:
//! each history entry that is not `empty_layer` owns the next layer,
//! bottom up, and its size is that layer's content size.

use kiln_core::Digest;

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
        let entries = image.config.history.as_deref().unwrap_or_default();
        let layers = image.layer_digests();
        let mut next_layer = layers.iter();
        let mut steps = Vec::with_capacity(entries.len());
        for h in entries {
            let layer = if h.empty_layer.unwrap_or(false) {
                None
            } else {
                next_layer.next().cloned()
            };
            let size = match &layer {
                Some(l) => self.layer_size(l)?,
                None => 0,
            };
            steps.push(HistoryStep {
                created: h.created.clone().filter(|c| !c.is_empty()),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone().unwrap_or_default(),
                layer,
                size,
            });
        }
        Ok(steps)
    }
}

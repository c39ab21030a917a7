//! What containers hold on to, for the commands that remove things: the
//! images they were created from (`rmi`, `image prune`). Their content is
//! already kept by each container's store GC root and their layers by the
//! container's active snapshot; this answers docker's policy questions.

use kiln_store::ImagesInUse;

use crate::engine::Engine;
use crate::error::Result;
use crate::record::Status;

impl Engine {
    /// Every image a container (any state) was created from, with its
    /// containers and whether each runs (restarting counts as running, as
    /// in docker). States are reconciled first: a container whose monitor
    /// died is stopped.
    pub fn images_in_use(&self) -> Result<ImagesInUse> {
        let mut used = ImagesInUse::new();
        for c in self.list()? {
            let Ok(image) = c.config.image_id.parse() else {
                tracing::warn!(
                    "container {} names no image ID ({:?})",
                    c.short_id(),
                    c.config.image_id
                );
                continue;
            };
            let running = matches!(c.state.status, Status::Running | Status::Restarting);
            used.add(image, c.config.id, running);
        }
        Ok(used)
    }
}

//! The instructions that only edit the config (ENV, LABEL, CMD, …): no
//! layer and nothing to run. What each does to the config and its history
//! line are `crate::meta`; here they join the cache key and the history.

use kiln_dockerfile::{Command, StageScope};

use super::Step;
use crate::cache::meta_key;
use crate::engine::Engine;
use crate::meta;
use crate::state::StageState;

impl Engine<'_> {
    pub(crate) fn meta_step(
        &self,
        step: &Step<'_>,
        state: &mut StageState,
        scope: &StageScope<'_>,
        command: &Command,
    ) {
        let line = meta::apply(state, scope, command);
        state.key = meta_key(&state.key, command);
        if let Some(line) = line {
            state.history(&step.created, line, false);
        }
        self.progress.done(step.id, false, step.t0.elapsed());
    }
}

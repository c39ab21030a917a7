//! Container commands (docker's verbs): `run`/`create` ([`run`]), the
//! lifecycle verbs ([`lifecycle`]), `ps`, `logs`, `volume`, `exec`,
//! `cp`, `diff`, `commit`, `top`, `stats`; `flags` holds
//! the `run`/`create` flags and their merge with the image.

pub(crate) mod commit;
pub(crate) mod cp;
pub(crate) mod diff;
pub(crate) mod exec;
pub(crate) mod flags;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod mounts;
pub(crate) mod netcmd;
pub(crate) mod network;
pub(crate) mod ps;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod terminal;
pub(crate) mod top;
pub(crate) mod volume;

use kiln_container::Engine;
use kiln_store::Store;

/// The engine of `store`, with this binary as the monitor.
pub(crate) fn engine(store: &Store) -> anyhow::Result<Engine> {
    let helper = std::env::current_exe().map_err(|e| {
        anyhow::anyhow!("cannot find the kiln binary to run the container's monitor: {e}")
    })?;
    Ok(Engine::new(store, helper)?)
}

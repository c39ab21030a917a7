//! Snapshot GC: [`Snapshotter::prune`] over the caller's keep set.

use std::collections::{BTreeSet, HashSet};
use std::fs;

use super::Snapshotter;
use crate::error::Result;

/// What [`Snapshotter::prune`] removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Committed snapshots.
    pub removed: Vec<String>,
    /// Active snapshots and views whose owner had gone.
    pub abandoned: Vec<String>,
}

impl Snapshotter {
    /// Removes every committed snapshot that is not in `keep` (the caller's
    /// roots: images' and the build cache's chain ids) and not used: held
    /// by a live lease, or a parent (transitively) of a kept one, of an
    /// active snapshot or of a view. Active snapshots and views whose
    /// owning lease is dead go first; those without an owner stay.
    pub fn prune(&self, keep: &BTreeSet<String>) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let mut doomed = Vec::new();
        {
            let _lock = self.lock(true)?;
            let leases = self.leases()?;
            let live: HashSet<&str> = leases
                .iter()
                .filter(|(_, alive, _)| *alive)
                .map(|(id, _, _)| id.as_str())
                .collect();
            let mut roots: BTreeSet<String> = keep.clone();
            for (_, alive, held) in &leases {
                if *alive {
                    roots.extend(held.iter().cloned());
                }
            }
            for a in self.actives()? {
                match &a.owner {
                    Some(o) if !live.contains(o.as_str()) => {
                        let p = self.active_path(&a.name);
                        match fs::remove_dir_all(&p) {
                            Ok(()) => report.abandoned.push(a.name),
                            // Still there: it still holds its parent.
                            Err(e) => {
                                tracing::warn!("remove abandoned snapshot {}: {e}", p.display());
                                roots.extend(a.parent);
                            }
                        }
                    }
                    _ => roots.extend(a.parent),
                }
            }
            let mut reachable = HashSet::new();
            for r in roots {
                let mut cur = Some(r);
                while let Some(c) = cur {
                    if !reachable.insert(c.clone()) {
                        break;
                    }
                    cur = self.parent_of(&c).ok().flatten();
                }
            }
            for name in self.committed()? {
                if !reachable.contains(&name) {
                    // Out of sight under the lock, deleted after it; what
                    // cannot be moved goes now, before a new snapshot of
                    // the same name could appear.
                    match self.to_trash(&self.path(&name)) {
                        Ok(t) => doomed.push(t),
                        Err(_) => self.trash(self.path(&name), true),
                    }
                    report.removed.push(name);
                }
            }
            for (id, alive, _) in &leases {
                if !alive {
                    let p = self.dir.join("leases").join(id);
                    let _ = fs::remove_file(&p);
                }
            }
            // Staging directories are only made under the shared lock:
            // whatever is there now, a dead writer left.
            let tmp = self.dir.join("tmp");
            if let Ok(rd) = fs::read_dir(&tmp) {
                doomed.extend(rd.flatten().map(|e| e.path()));
            }
        }
        for d in doomed {
            if let Err(e) = fs::remove_dir_all(&d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("remove {}: {e}", d.display());
                }
            }
        }
        report.removed.sort();
        Ok(report)
    }
}

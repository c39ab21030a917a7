//! Waste by cause and by step: what dive's list does not say.
//!
//! The layers are replayed with the layer format's own rules (whiteouts and
//! opaque directories apply to the layers below; a later entry replaces an
//! earlier file), remembering which layer put each file there. Every byte
//! a later layer hides is waste, attributed to the step that added it and
//! the step that hid it; files still in the image under a package
//! manager's cache are waste too. dive misses some of this: a directory
//! deleted in a later layer (`rm -rf /tmp/src`) is one sighting of the
//! directory's path for dive, not waste.
//!
//! Files are grouped by what can be fixed at once: a deleted directory,
//! an overwritten file, one cache (`/var/lib/apt/lists`, ...) per pair of
//! steps; each group carries a one-line fix.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::tree::LayerTree;

/// Why bytes are wasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A later step replaced the file.
    Overwritten,
    /// A later step deleted the file (or a directory holding it).
    DeletedLater,
    /// apt's package lists (`/var/lib/apt/lists`).
    AptLists,
    /// apt's package caches (`/var/cache/apt/*.bin`).
    AptCache,
    /// pip's download cache (`/root/.cache/pip`).
    PipCache,
    /// Python bytecode caches (`__pycache__`).
    Pycache,
}

impl Cause {
    pub fn label(self) -> &'static str {
        match self {
            Cause::Overwritten => "file overwritten",
            Cause::DeletedLater => "file deleted later",
            Cause::AptLists => "apt package lists",
            Cause::AptCache => "apt package cache",
            Cause::PipCache => "pip cache",
            Cause::Pycache => "__pycache__",
        }
    }

    /// The cache a path lies in, with the group path its files share.
    fn cache_of(path: &str) -> Option<(Cause, String)> {
        if path.starts_with("/var/lib/apt/lists/") {
            Some((Cause::AptLists, "/var/lib/apt/lists".into()))
        } else if path.starts_with("/var/cache/apt/") && path.ends_with(".bin") {
            Some((Cause::AptCache, "/var/cache/apt/*.bin".into()))
        } else if path.starts_with("/root/.cache/pip/") {
            Some((Cause::PipCache, "/root/.cache/pip".into()))
        } else if path.contains("/__pycache__/") {
            Some((Cause::Pycache, "**/__pycache__".into()))
        } else {
            None
        }
    }

    /// A one-line fix; `later` says whether a later step removed the files.
    pub fn fix(self, later: bool) -> &'static str {
        match (self, later) {
            (Cause::DeletedLater, _) => {
                "delete it in the step that creates it: combine the download and the cleanup in one RUN (or build it in a stage and COPY --from only the result)"
            }
            (Cause::Overwritten, _) => {
                "write it once: merge the step that creates it with the one that replaces it, or order the steps so only the final version is added"
            }
            (Cause::AptLists, true) => {
                "remove the lists in the RUN that runs apt-get update (`&& rm -rf /var/lib/apt/lists/*`), not in a later one"
            }
            (Cause::AptLists, false) => {
                "end the RUN that runs apt-get update with `&& rm -rf /var/lib/apt/lists/*`"
            }
            (Cause::AptCache, _) => {
                "run `apt-get clean` in the same RUN as apt-get install (or mount a cache: RUN --mount=type=cache,target=/var/cache/apt)"
            }
            (Cause::PipCache, _) => {
                "use `pip install --no-cache-dir` (or RUN --mount=type=cache,target=/root/.cache/pip)"
            }
            (Cause::Pycache, _) => {
                "set ENV PYTHONDONTWRITEBYTECODE=1, or delete __pycache__ in the RUN that creates it"
            }
        }
    }
}

/// Files wasted for one reason between the same two steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WasteGroup {
    pub cause: Cause,
    /// The file, the deleted directory, or the cache.
    pub path: String,
    pub files: usize,
    pub bytes: u64,
    /// The layer (index) whose step added the files.
    pub added_in: usize,
    /// The layer whose step deleted or replaced them (none: still there).
    pub removed_in: Option<usize>,
}

/// Waste found in an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Waste {
    /// Largest first.
    pub groups: Vec<WasteGroup>,
    /// Bytes per cause, largest first.
    pub by_cause: Vec<(Cause, u64)>,
    /// Every byte in `groups`.
    pub total: u64,
}

#[derive(Clone, Copy)]
struct Origin {
    size: u64,
    layer: usize,
    is_dir: bool,
}

type Key = (Cause, String, usize, Option<usize>);

#[derive(Default)]
struct Replay {
    state: BTreeMap<String, Origin>,
    groups: HashMap<Key, (usize, u64)>,
}

impl Replay {
    fn record(&mut self, path: &str, group: &str, origin: Origin, cause: Cause, by: Option<usize>) {
        if origin.is_dir || origin.size == 0 {
            return;
        }
        let (cause, group) = match Cause::cache_of(path) {
            Some((c, g)) => (c, g),
            None => (cause, group.to_string()),
        };
        let g = self
            .groups
            .entry((cause, group, origin.layer, by))
            .or_default();
        g.0 += 1;
        g.1 += origin.size;
    }

    /// Hides `dir`'s contents (not `dir`) that came from layers below `layer`.
    fn hide_below(&mut self, dir: &str, layer: usize, group: &str, with_self: bool) {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let end = if dir == "/" {
            "0".to_string()
        } else {
            format!("{dir}0")
        };
        let doomed: Vec<(String, Origin)> = self
            .state
            .range(prefix..end)
            .filter(|(_, o)| o.layer < layer)
            .map(|(k, o)| (k.clone(), *o))
            .collect();
        for (path, origin) in doomed {
            self.state.remove(&path);
            self.record(&path, group, origin, Cause::DeletedLater, Some(layer));
        }
        if with_self {
            if let Some(origin) = self.state.remove(dir) {
                self.record(dir, group, origin, Cause::DeletedLater, Some(layer));
            }
        }
    }
}

/// The waste of `trees` (bottom layer first).
pub fn waste(trees: &[LayerTree]) -> Waste {
    let mut r = Replay::default();
    for (layer, tree) in trees.iter().enumerate() {
        for dir in &tree.opaque {
            r.hide_below(dir, layer, dir, false);
        }
        let order = tree.post_order();
        for &id in &order {
            if tree.nodes[id].is_whiteout() {
                let path = tree.path(id);
                r.hide_below(&path, layer, &path, true);
            }
        }
        for &id in &order {
            let node = &tree.nodes[id];
            let Some(info) = node.info.as_ref().filter(|_| !node.is_whiteout()) else {
                continue;
            };
            let path = tree.path(id);
            let new = Origin {
                size: info.size,
                layer,
                is_dir: info.is_dir,
            };
            if let Some(old) = r.state.insert(path.clone(), new) {
                if old.layer < layer {
                    r.record(&path, &path, old, Cause::Overwritten, Some(layer));
                }
            }
        }
    }
    // Caches still in the image.
    let kept: Vec<(String, Origin)> = r
        .state
        .iter()
        .filter(|(p, _)| Cause::cache_of(p).is_some())
        .map(|(p, o)| (p.clone(), *o))
        .collect();
    for (path, origin) in kept {
        r.record(&path, &path, origin, Cause::DeletedLater, None);
    }
    let mut groups: Vec<WasteGroup> = r
        .groups
        .into_iter()
        .map(
            |((cause, path, added_in, removed_in), (files, bytes))| WasteGroup {
                cause,
                path,
                files,
                bytes,
                added_in,
                removed_in,
            },
        )
        .collect();
    groups.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.path.cmp(&b.path))
            .then(a.added_in.cmp(&b.added_in))
    });
    let mut by: BTreeMap<Cause, u64> = BTreeMap::new();
    for g in &groups {
        *by.entry(g.cause).or_default() += g.bytes;
    }
    let mut by_cause: Vec<(Cause, u64)> = by.into_iter().collect();
    by_cause.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total = groups.iter().map(|g| g.bytes).sum();
    Waste {
        groups,
        by_cause,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::fixtures::{dir, file};

    #[test]
    fn deleted_dirs_overwrites_opaque_dirs_and_caches_are_grouped_by_step() {
        let trees = vec![
            LayerTree::build(vec![
                dir("src"),
                file("src/a", 10),
                file("src/b", 5),
                file("cfg", 3),
            ]),
            LayerTree::build(vec![
                file(".wh.src", 0),
                file("cfg", 4),
                dir("var/lib/apt/lists"),
                file("var/lib/apt/lists/x", 100),
                dir("opt"),
                file("opt/old", 20),
            ]),
            LayerTree::build(vec![
                dir("opt"),
                file("opt/.wh..wh..opq", 0),
                file("opt/new", 1),
            ]),
        ];
        let w = waste(&trees);
        type Row<'a> = (Cause, &'a str, usize, u64, usize, Option<usize>);
        let got: Vec<Row<'_>> = w
            .groups
            .iter()
            .map(|g| {
                (
                    g.cause,
                    g.path.as_str(),
                    g.files,
                    g.bytes,
                    g.added_in,
                    g.removed_in,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Cause::AptLists, "/var/lib/apt/lists", 1, 100, 1, None),
                (Cause::DeletedLater, "/opt", 1, 20, 1, Some(2)),
                (Cause::DeletedLater, "/src", 2, 15, 0, Some(1)),
                (Cause::Overwritten, "/cfg", 1, 3, 0, Some(1)),
            ]
        );
        assert_eq!(w.total, 138);
        assert_eq!(w.by_cause[0], (Cause::AptLists, 100));
    }
}

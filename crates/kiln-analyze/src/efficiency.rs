//! dive's efficiency score, to its exact rules (`dive/filetree/efficiency.go`
//! and `dive/image/analysis.go` of dive 0.13):
//!
//! - every leaf of every layer's tree is one sighting of its path (a
//!   whiteout is a sighting of the path it deletes);
//! - a sighting's size is the entry's size; a whiteout's is 0, unless the
//!   path was a directory in the layers below, then it is the sum of
//!   everything beneath it there (the directory included);
//! - per path: the cumulative size over its sightings and the smallest;
//!   efficiency = Σ smallest / Σ cumulative (1 when nothing has a size);
//! - inefficient paths are those sighted twice or more; wasted bytes are
//!   their cumulative sizes summed (the surviving copy included).
//!
//! dive finds a whiteout's earlier directory by stacking the trees below
//! it again for every whiteout; this keeps the stacked state as it goes, a
//! map from path to (size, is-dir) updated layer by layer with dive's
//! stacking rules, so a whiteout costs a range lookup. A whiteout whose
//! target the layers below never had stops dive's walk of that layer
//! (its error ends the visit) after the path was put in the map with a
//! smallest size of -1: reproduced, since it moves the score.

use std::collections::{BTreeMap, HashMap};

use crate::tree::LayerTree;

/// One path's sightings over all layers.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStats {
    pub path: String,
    pub cumulative: i64,
    /// The smallest sighting (-1 when dive's walk failed on the path).
    pub smallest: i64,
    /// The layers (indexes) that sighted it, in order.
    pub layers: Vec<usize>,
}

/// dive's verdict on an image's layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Efficiency {
    pub score: f64,
    /// Paths sighted in two or more layers, largest cumulative size first
    /// (ties by path).
    pub inefficient: Vec<PathStats>,
    /// Σ cumulative size of the inefficient paths.
    pub wasted_bytes: u64,
}

/// The stacked state of the layers below: `/a/b` → (size, is-dir).
#[derive(Default)]
pub(crate) struct Stacked {
    map: BTreeMap<String, (u64, bool)>,
}

impl Stacked {
    fn get(&self, path: &str) -> Option<(u64, bool)> {
        self.map.get(path).copied()
    }

    /// The keys under `path` (not `path` itself): `path/` up to `path0`
    /// ('0' follows '/').
    fn below(&self, path: &str) -> std::ops::Range<String> {
        format!("{path}/")..format!("{path}0")
    }

    /// The size of `path` and everything beneath it.
    fn subtree_size(&self, path: &str) -> u64 {
        let own = self.map.get(path).map_or(0, |v| v.0);
        own + self
            .map
            .range(self.below(path))
            .map(|(_, v)| v.0)
            .sum::<u64>()
    }

    fn remove(&mut self, path: &str) {
        if self.map.remove(path).is_none() {
            // dive's RemovePath fails on a missing path and changes nothing.
            return;
        }
        let doomed: Vec<String> = self
            .map
            .range(self.below(path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.map.remove(&k);
        }
    }

    /// dive's `AddPath` on the stacked tree: parents made empty as needed.
    fn add(&mut self, path: &str, value: (u64, bool)) {
        let mut end = 0;
        while let Some(i) = path[end + 1..].find('/') {
            end += 1 + i;
            self.map
                .entry(path[..end].to_string())
                .or_insert((0, false));
        }
        self.map.insert(path.to_string(), value);
    }

    /// dive's `Stack`: every node of the upper tree, children first; a
    /// whiteout removes its path, anything else sets its facts (a parent
    /// without an entry sets empty facts).
    pub(crate) fn stack(&mut self, tree: &LayerTree) {
        for id in tree.post_order() {
            let node = &tree.nodes[id];
            let path = tree.path(id);
            if node.is_whiteout() {
                self.remove(&path);
            } else {
                self.add(&path, (node.size(), node.is_dir()));
            }
        }
    }

    /// The bottom layer's own tree, unstacked: what dive compares the
    /// bottom layer's whiteouts against (it copies tree 0 before stacking).
    fn copy_of(tree: &LayerTree) -> Stacked {
        let mut s = Stacked::default();
        for id in tree.post_order() {
            let node = &tree.nodes[id];
            if !node.is_whiteout() {
                let path = tree.path(id);
                s.map.insert(path, (node.size(), node.is_dir()));
            } else {
                // Copy keeps the whiteout node under its own name, which
                // no lookup by a target path finds.
            }
        }
        s
    }
}

/// One path's running sums. Most paths are sighted in one layer only, so
/// the first sighting is kept inline and only later ones allocate.
struct Data {
    cumulative: i64,
    smallest: i64,
    first_layer: usize,
    later_layers: Vec<usize>,
}

/// dive's efficiency of `trees` (bottom layer first).
pub fn efficiency(trees: &[LayerTree]) -> Efficiency {
    let mut map: HashMap<String, Data> = HashMap::new();
    let mut inefficient: Vec<String> = Vec::new();
    let mut stacked = Stacked::default();
    for (index, tree) in trees.iter().enumerate() {
        let bottom;
        let below = if index == 0 {
            bottom = Stacked::copy_of(tree);
            &bottom
        } else {
            &stacked
        };
        for id in tree.post_order() {
            let node = &tree.nodes[id];
            if !node.is_leaf() {
                continue;
            }
            let path = tree.path(id);
            let (data, new) = match map.entry(path.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => (e.into_mut(), false),
                std::collections::hash_map::Entry::Vacant(e) => (
                    e.insert(Data {
                        cumulative: 0,
                        smallest: -1,
                        first_layer: index,
                        later_layers: Vec::new(),
                    }),
                    true,
                ),
            };
            let size = if node.is_whiteout() {
                match below.get(&path) {
                    // dive's walk of this layer ends here.
                    None => break,
                    Some((_, true)) => below.subtree_size(&path),
                    Some((_, false)) => 0,
                }
            } else {
                node.size()
            };
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            data.cumulative += size;
            if data.smallest < 0 || size < data.smallest {
                data.smallest = size;
            }
            if !new {
                data.later_layers.push(index);
                if data.later_layers.len() == 1 {
                    inefficient.push(path);
                }
            }
        }
        stacked.stack(tree);
    }
    let (mut smallest, mut cumulative) = (0i64, 0i64);
    for d in map.values() {
        smallest += d.smallest;
        cumulative += d.cumulative;
    }
    let score = if cumulative == 0 {
        1.0
    } else {
        smallest as f64 / cumulative as f64
    };
    let mut list: Vec<PathStats> = inefficient
        .into_iter()
        .filter_map(|p| {
            let d = map.remove(&p)?;
            Some(PathStats {
                path: p,
                cumulative: d.cumulative,
                smallest: d.smallest,
                layers: std::iter::once(d.first_layer)
                    .chain(d.later_layers)
                    .collect(),
            })
        })
        .collect();
    list.sort_by(|a, b| b.cumulative.cmp(&a.cumulative).then(a.path.cmp(&b.path)));
    let wasted_bytes = list
        .iter()
        .map(|p| u64::try_from(p.cumulative).unwrap_or(0))
        .sum();
    Efficiency {
        score,
        inefficient: list,
        wasted_bytes,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entry::fixtures::{dir, file};

    #[test]
    fn overwrite_counts_both_copies_as_waste() {
        let trees = vec![
            LayerTree::build(vec![file("a", 100), file("b", 50)]),
            LayerTree::build(vec![file("a", 10)]),
        ];
        let e = efficiency(&trees);
        // smallest: a 10 + b 50; cumulative: a 110 + b 50.
        assert!((e.score - 60.0 / 160.0).abs() < 1e-12);
        assert_eq!(e.wasted_bytes, 110);
        assert_eq!(e.inefficient.len(), 1);
        assert_eq!(e.inefficient[0].path, "/a");
        assert_eq!(e.inefficient[0].layers, vec![0, 1]);
    }

    #[test]
    fn a_deleted_file_weighs_nothing_and_a_deleted_dir_weighs_its_contents() {
        let trees = vec![
            LayerTree::build(vec![
                dir("d"),
                file("d/x", 30),
                file("d/y", 12),
                file("f", 7),
            ]),
            LayerTree::build(vec![file(".wh.d", 0), file(".wh.f", 0)]),
        ];
        let e = efficiency(&trees);
        // /d/x 30, /d/y 12 (once each); /d sighted once as a whiteout of
        // 42; /f 7 then 0 → inefficient, smallest 0.
        assert_eq!(e.wasted_bytes, 7);
        assert_eq!(e.inefficient[0].path, "/f");
        let smallest = 30 + 12 + 42;
        let cumulative = 30 + 12 + 42 + 7;
        assert!((e.score - f64::from(smallest) / f64::from(cumulative)).abs() < 1e-12);
    }

    #[test]
    fn a_whiteout_of_nothing_ends_the_layer_walk_like_dive() {
        let trees = vec![
            LayerTree::build(vec![file("a", 10)]),
            LayerTree::build(vec![file(".wh.ghost", 0), file("z", 5)]),
        ];
        let e = efficiency(&trees);
        // /ghost enters with smallest -1, /z is never sighted.
        assert!((e.score - 9.0 / 10.0).abs() < 1e-12);
        assert!(e.inefficient.is_empty());
    }

    #[test]
    fn nothing_sized_scores_one() {
        let e = efficiency(&[LayerTree::build(vec![dir("a")])]);
        assert!((e.score - 1.0).abs() < f64::EPSILON);
    }
}

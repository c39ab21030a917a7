//! A layer's file tree, built the way dive builds it, because dive's
//! numbers depend on its shape: every entry is a node under its parent
//! (parents without an entry of their own are made empty: no size, not a
//! directory), a whiteout `.wh.NAME` is a node of its own whose path is
//! `NAME`'s, opaque markers are left out of the tree (kept aside in
//! [`LayerTree::opaque`] for kiln's own waste report), and a later entry
//! for the same path replaces the earlier one's facts.
//!
//! Children are kept sorted by name (byte order, as Go sorts strings) and
//! walks are depth-first, children before their parent: dive's
//! `VisitDepthChildFirst`.

use std::collections::BTreeMap;

use crate::entry::{FileInfo, OPAQUE_PREFIX, WHITEOUT_PREFIX};

/// An index into [`LayerTree::nodes`].
pub type NodeId = usize;

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub parent: Option<NodeId>,
    pub children: BTreeMap<String, NodeId>,
    /// The entry's facts; `None` for a parent that had no entry.
    pub info: Option<FileInfo>,
}

impl Node {
    pub fn is_whiteout(&self) -> bool {
        self.name.starts_with(WHITEOUT_PREFIX)
    }

    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }

    /// The entry's size (0 for a parent without an entry).
    pub fn size(&self) -> u64 {
        self.info.as_ref().map_or(0, |i| i.size)
    }

    pub fn is_dir(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.is_dir)
    }
}

/// One layer's tree; node 0 is the root.
#[derive(Debug, Clone)]
pub struct LayerTree {
    pub nodes: Vec<Node>,
    /// Σ of every entry's size: dive's layer size.
    pub size: u64,
    /// Directories this layer made opaque (`/a/b`).
    pub opaque: Vec<String>,
    /// Number of tar entries read.
    pub entries: usize,
}

impl Default for LayerTree {
    fn default() -> Self {
        LayerTree {
            nodes: vec![Node {
                name: String::new(),
                parent: None,
                children: BTreeMap::new(),
                info: None,
            }],
            size: 0,
            opaque: Vec::new(),
            entries: 0,
        }
    }
}

impl LayerTree {
    /// The tree of a layer's entries (in archive order).
    pub fn build(entries: Vec<FileInfo>) -> LayerTree {
        let mut tree = LayerTree::default();
        // About one node per entry (parents without entries are few): a
        // reservation instead of doubling, and the slack given back, keep
        // the trees of every layer (alive together) at their size.
        tree.nodes.reserve_exact(entries.len());
        for info in entries {
            tree.entries += 1;
            tree.size += info.size;
            tree.add(info);
        }
        tree.nodes.shrink_to_fit();
        tree
    }

    /// dive's `AddPath`: walks (making) the parents and attaches the facts
    /// to the last node; an opaque marker is never made a node.
    fn add(&mut self, info: FileInfo) {
        let path = info.path.clone();
        let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
        let mut node = 0;
        for (i, name) in names.iter().enumerate() {
            if let Some(&child) = self.nodes[node].children.get(*name) {
                node = child;
            } else {
                if name.starts_with(OPAQUE_PREFIX) {
                    self.opaque.push(format!("/{}", names[..i].join("/")));
                    return;
                }
                let id = self.nodes.len();
                self.nodes.push(Node {
                    name: (*name).to_string(),
                    parent: Some(node),
                    children: BTreeMap::new(),
                    info: None,
                });
                self.nodes[node].children.insert((*name).to_string(), id);
                node = id;
            }
        }
        if node != 0 {
            self.nodes[node].info = Some(info);
        }
    }

    /// dive's `Path()`: `/a/b`, the whiteout prefix taken off the node's
    /// own name.
    pub fn path(&self, id: NodeId) -> String {
        let mut names = Vec::new();
        let mut cur = id;
        while let Some(parent) = self.nodes[cur].parent {
            let name = self.nodes[cur].name.as_str();
            names.push(if cur == id {
                name.strip_prefix(WHITEOUT_PREFIX).unwrap_or(name)
            } else {
                name
            });
            cur = parent;
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// Every node but the root, children first, siblings by name.
    pub fn post_order(&self) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.nodes.len());
        // (node, children visited?)
        let mut stack = vec![(0usize, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                if id != 0 {
                    out.push(id);
                }
                continue;
            }
            stack.push((id, true));
            for &child in self.nodes[id].children.values().rev() {
                stack.push((child, false));
            }
        }
        out
    }

    /// The node at `/a/b`, if the tree has it.
    pub fn find(&self, path: &str) -> Option<NodeId> {
        let mut node = 0;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            node = *self.nodes[node].children.get(name)?;
        }
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entry::fixtures::file;

    #[test]
    fn parents_are_made_and_whiteouts_keep_their_target_path() {
        let t = LayerTree::build(vec![
            file("a/b/c", 3),
            file("a/.wh.gone", 0),
            file("a/.wh..wh..opq", 0),
        ]);
        assert_eq!(t.size, 3);
        assert_eq!(t.opaque, vec!["/a".to_string()]);
        let order: Vec<String> = t.post_order().into_iter().map(|n| t.path(n)).collect();
        // ".wh.gone" sorts before "b"; children before parents.
        assert_eq!(order, vec!["/a/gone", "/a/b/c", "/a/b", "/a"]);
        let b = t.find("/a/b").unwrap();
        assert!(
            t.nodes[b].info.is_none(),
            "a parent without an entry has no facts"
        );
    }
}

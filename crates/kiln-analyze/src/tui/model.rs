//! The explorer's state and what each key does, without a terminal: the
//! selected pane, layer and file row, the compare mode, hidden change
//! kinds, collapsed directories and the filter. [`Model::rows`] is the
//! file tree as the screen shows it; the renderer only draws.
//!
//! The tree at a layer is the image's filesystem after that layer
//! (whiteouts and opaque directories applied). Marks compare it with the
//! filesystem below the layer ("layer changes", dive's default) or below
//! the second layer ("aggregated changes": everything the build added on
//! top of its base); removed paths stay visible, marked, as in dive.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::Analysis;
use crate::entry::FileInfo;
use crate::tree::LayerTree;

/// A key, as the explorer understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Tab,
    Up,
    Down,
    PageUp,
    PageDown,
    Space,
    Enter,
    Esc,
    Backspace,
    Char(char),
    /// Ctrl + a letter (lowercase).
    Ctrl(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Layers,
    Files,
}

/// How a path differs from the tree it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Added,
    Removed,
    Modified,
    Unmodified,
}

impl Change {
    /// dive's marks: `+` added, `-` removed, `~` modified.
    pub fn mark(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => '~',
            Change::Unmodified => ' ',
        }
    }
}

/// One line of the file tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub path: String,
    pub name: String,
    pub depth: usize,
    pub is_dir: bool,
    pub collapsed: bool,
    /// The file's size, or a directory's total beneath it.
    pub size: u64,
    pub change: Change,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fact {
    size: u64,
    is_dir: bool,
    mode: u32,
    uid: u64,
    gid: u64,
    link: String,
}

impl Fact {
    fn of(i: &FileInfo) -> Fact {
        Fact {
            size: i.size,
            is_dir: i.is_dir,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            link: i.link_name.clone(),
        }
    }
}

type Fs = BTreeMap<String, (Fact, usize)>;

fn under(fs: &Fs, dir: &str) -> Vec<String> {
    fs.range(format!("{dir}/")..format!("{dir}0"))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Applies one layer (OCI rules) to a filesystem; `layer` marks entries.
fn apply(fs: &mut Fs, tree: &LayerTree, layer: usize) {
    for dir in &tree.opaque {
        for k in under(fs, dir) {
            fs.remove(&k);
        }
    }
    let order = tree.post_order();
    for &id in &order {
        if tree.nodes[id].is_whiteout() {
            let p = tree.path(id);
            for k in under(fs, &p) {
                fs.remove(&k);
            }
            fs.remove(&p);
        }
    }
    for &id in &order {
        let node = &tree.nodes[id];
        if node.is_whiteout() {
            continue;
        }
        let p = tree.path(id);
        match &node.info {
            Some(i) => {
                fs.insert(p, (Fact::of(i), layer));
            }
            None => {
                fs.entry(p).or_insert((
                    Fact {
                        size: 0,
                        is_dir: true,
                        mode: 0o755 | (1 << 31),
                        uid: 0,
                        gid: 0,
                        link: String::new(),
                    },
                    layer,
                ));
            }
        }
    }
}

/// The explorer's state.
pub struct Model<'a> {
    pub analysis: &'a Analysis,
    pub pane: Pane,
    pub layer: usize,
    /// false: changes of the selected layer; true: aggregated changes.
    pub aggregated: bool,
    pub hidden: BTreeSet<Change>,
    pub collapsed: BTreeSet<String>,
    pub filter: String,
    /// Typing into the filter.
    pub filtering: bool,
    pub file_row: usize,
    /// Rows a page holds (set by the renderer).
    pub page: usize,
    /// Filesystems after each layer, computed once.
    after: Vec<Fs>,
}

fn component_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl<'a> Model<'a> {
    pub fn new(analysis: &'a Analysis) -> Model<'a> {
        let mut after = Vec::with_capacity(analysis.layers.len());
        let mut fs = Fs::new();
        for (i, l) in analysis.layers.iter().enumerate() {
            apply(&mut fs, &l.tree, i);
            after.push(fs.clone());
        }
        Model {
            analysis,
            pane: Pane::Layers,
            layer: 0,
            aggregated: false,
            hidden: BTreeSet::new(),
            collapsed: BTreeSet::new(),
            filter: String::new(),
            filtering: false,
            file_row: 0,
            page: 10,
            after,
        }
    }

    /// What the selected layer is compared with.
    fn base(&self) -> Option<&Fs> {
        let below = if self.aggregated { 0 } else { self.layer };
        if self.layer == 0 || below == 0 && !self.aggregated {
            return None;
        }
        if self.aggregated {
            self.after.first()
        } else {
            self.after.get(below - 1)
        }
    }

    /// The file tree at the selected layer, filtered and collapsed.
    pub fn rows(&self) -> Vec<Row> {
        let empty = Fs::new();
        let now = self.after.get(self.layer).unwrap_or(&empty);
        let base = self.base();
        // Every path: present now, or removed since the base.
        let mut all: BTreeMap<&str, (Fact, Change)> = BTreeMap::new();
        for (p, (fact, changed_in)) in now {
            let change = match base {
                None if self.layer == 0 => Change::Added,
                None => Change::Unmodified,
                Some(b) => match b.get(p) {
                    None => Change::Added,
                    Some((old, _)) if old != fact => Change::Modified,
                    Some((_, old_layer)) if old_layer != changed_in && !fact.is_dir => {
                        Change::Modified
                    }
                    Some(_) => Change::Unmodified,
                },
            };
            all.insert(p, (fact.clone(), change));
        }
        if let Some(b) = base {
            for (p, (fact, _)) in b {
                all.entry(p).or_insert((fact.clone(), Change::Removed));
            }
        }
        let mut paths: Vec<&str> = all.keys().copied().collect();
        paths.sort_by(|a, b| component_order(a, b));
        // Directory sizes and whether anything beneath passes the filters.
        let mut total: BTreeMap<&str, u64> = BTreeMap::new();
        let mut shown: BTreeSet<&str> = BTreeSet::new();
        for &p in paths.iter().rev() {
            let (fact, change) = &all[p];
            let own = if fact.is_dir { 0 } else { fact.size };
            let sum = own + total.get(p).copied().unwrap_or(0);
            total.insert(p, sum);
            let passes = !self.hidden.contains(change)
                && (self.filter.is_empty() || p.contains(self.filter.as_str()));
            if passes || shown.contains(p) {
                shown.insert(p);
            }
            if let Some((parent, _)) = p.rsplit_once('/') {
                if !parent.is_empty() {
                    *total.entry(parent).or_default() += sum;
                    if shown.contains(p) {
                        shown.insert(parent);
                    }
                }
            }
        }
        let mut rows = Vec::new();
        let mut skip_under: Option<String> = None;
        for &p in &paths {
            if let Some(s) = &skip_under {
                if p.starts_with(s.as_str()) {
                    continue;
                }
                skip_under = None;
            }
            if !shown.contains(p) {
                continue;
            }
            let (fact, change) = &all[p];
            let collapsed = fact.is_dir && self.collapsed.contains(p);
            if collapsed {
                skip_under = Some(format!("{p}/"));
            }
            rows.push(Row {
                path: p.to_string(),
                name: p.rsplit('/').next().unwrap_or(p).to_string()
                    + &if fact.link.is_empty() || fact.is_dir {
                        String::new()
                    } else {
                        format!(" → {}", fact.link)
                    },
                depth: p.matches('/').count().saturating_sub(1),
                is_dir: fact.is_dir,
                collapsed,
                size: total.get(p).copied().unwrap_or(0),
                change: *change,
                mode: fact.mode,
                uid: fact.uid,
                gid: fact.gid,
            });
        }
        rows
    }

    /// Handles a key; false when the explorer should close.
    pub fn key(&mut self, key: Key) -> bool {
        if self.filtering {
            match key {
                Key::Enter | Key::Esc | Key::Tab => self.filtering = false,
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Char(c) => self.filter.push(c),
                Key::Space => self.filter.push(' '),
                Key::Ctrl('c') => return false,
                _ => {}
            }
            self.file_row = 0;
            return true;
        }
        match key {
            Key::Ctrl('c') | Key::Char('q') => return false,
            Key::Tab => {
                self.pane = match self.pane {
                    Pane::Layers => Pane::Files,
                    Pane::Files => Pane::Layers,
                }
            }
            Key::Ctrl('f') => {
                self.filtering = true;
                self.pane = Pane::Files;
            }
            Key::Ctrl('l') => self.aggregated = !self.aggregated,
            Key::Ctrl('a') => self.toggle(Change::Added),
            Key::Ctrl('r') => self.toggle(Change::Removed),
            // A terminal sends Ctrl+M as Enter (dive's binding too).
            Key::Ctrl('m') | Key::Enter => self.toggle(Change::Modified),
            Key::Ctrl('u') => self.toggle(Change::Unmodified),
            Key::Space if self.pane == Pane::Files => {
                if let Some(r) = self.rows().get(self.file_row) {
                    if r.is_dir && !self.collapsed.remove(&r.path) {
                        self.collapsed.insert(r.path.clone());
                    }
                }
            }
            Key::Up | Key::Char('k') => self.step(-1),
            Key::Down | Key::Char('j') => self.step(1),
            Key::PageUp => self.step(-(self.page.max(1) as isize)),
            Key::PageDown => self.step(self.page.max(1) as isize),
            _ => {}
        }
        true
    }

    fn toggle(&mut self, c: Change) {
        if !self.hidden.remove(&c) {
            self.hidden.insert(c);
        }
        self.file_row = 0;
    }

    fn step(&mut self, by: isize) {
        let (cur, len) = match self.pane {
            Pane::Layers => (self.layer, self.analysis.layers.len()),
            Pane::Files => (self.file_row, self.rows().len()),
        };
        let next = cur.saturating_add_signed(by).min(len.saturating_sub(1));
        match self.pane {
            Pane::Layers => {
                if next != self.layer {
                    self.layer = next;
                    self.file_row = 0;
                }
            }
            Pane::Files => self.file_row = next,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::source::{ImageSource, LayerBytes, LayerSource};
    use kiln_core::image::ImageConfig;

    fn file(path: &str, size: u64) -> FileInfo {
        FileInfo {
            path: path.into(),
            type_flag: b'0',
            size,
            mode: 0o644,
            ..FileInfo::default()
        }
    }

    fn dir(path: &str) -> FileInfo {
        FileInfo {
            path: path.into(),
            type_flag: b'5',
            is_dir: true,
            mode: 0o755 | (1 << 31),
            ..FileInfo::default()
        }
    }

    fn analysis(layers: Vec<Vec<FileInfo>>) -> Analysis {
        let n = layers.len();
        let source = ImageSource {
            name: "test".into(),
            config: ImageConfig::from_slice(b"{}").unwrap(),
            config_digest: None,
            layers: (0..n)
                .map(|_| LayerSource {
                    digest: None,
                    archive_name: None,
                    bytes: LayerBytes::File {
                        path: "/dev/null".into(),
                        start: 0,
                        len: 0,
                    },
                })
                .collect(),
        };
        crate::analysis::from_trees(&source, layers.into_iter().map(LayerTree::build).collect())
    }

    fn marks(m: &Model<'_>) -> Vec<String> {
        m.rows()
            .iter()
            .map(|r| {
                format!(
                    "{}{}{} {}",
                    r.change.mark(),
                    "  ".repeat(r.depth),
                    r.name,
                    r.size
                )
            })
            .collect()
    }

    #[test]
    fn layers_marks_filter_collapse_and_keys() {
        let a = analysis(vec![
            vec![
                dir("etc"),
                file("etc/a", 5),
                file("etc/b", 7),
                dir("bin"),
                file("bin/sh", 100),
            ],
            vec![
                dir("etc"),
                file("etc/a", 6),
                file("etc/.wh.b", 0),
                file("new", 1),
            ],
        ]);
        let mut m = Model::new(&a);
        // Layer 0: everything added; directories carry their totals.
        assert_eq!(
            marks(&m),
            vec!["+bin 100", "+  sh 100", "+etc 12", "+  a 5", "+  b 7"]
        );
        m.key(Key::Down);
        assert_eq!(m.layer, 1);
        assert_eq!(
            marks(&m),
            vec![
                " bin 100",
                "   sh 100",
                " etc 13",
                "~  a 6",
                "-  b 7",
                "+new 1"
            ]
        );
        // Hide unmodified rows (Ctrl+U): bin goes.
        m.key(Key::Ctrl('u'));
        assert_eq!(marks(&m), vec![" etc 13", "~  a 6", "-  b 7", "+new 1"]);
        m.key(Key::Ctrl('u'));
        // Collapse etc in the file pane.
        m.key(Key::Tab);
        assert_eq!(m.pane, Pane::Files);
        m.key(Key::Down);
        m.key(Key::Down);
        m.key(Key::Space);
        assert_eq!(
            marks(&m),
            vec![" bin 100", "   sh 100", " etc 13", "+new 1"]
        );
        assert!(m.rows()[2].collapsed);
        m.key(Key::Space);
        // Filter: only paths with "sh", with their parents.
        m.key(Key::Ctrl('f'));
        for c in "sh".chars() {
            m.key(Key::Char(c));
        }
        m.key(Key::Enter);
        assert!(!m.filtering);
        assert_eq!(marks(&m), vec![" bin 100", "   sh 100"]);
        m.key(Key::Ctrl('f'));
        m.key(Key::Backspace);
        m.key(Key::Backspace);
        m.key(Key::Esc);
        // Removed and added hidden.
        m.key(Key::Ctrl('r'));
        m.key(Key::Ctrl('a'));
        assert_eq!(
            marks(&m),
            vec![" bin 100", "   sh 100", " etc 13", "~  a 6"]
        );
        // Ctrl+L: aggregated, q quits.
        m.key(Key::Ctrl('l'));
        assert!(m.aggregated);
        assert!(!m.key(Key::Char('q')));
        assert!(!m.key(Key::Ctrl('c')));
    }
}

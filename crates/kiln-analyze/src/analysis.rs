//! One image analysed: its layers read (in parallel, each as a stream of
//! tar headers), dive's numbers ([`crate::efficiency`]) and kiln's waste
//! report ([`crate::waste`]), with each layer's step from the history.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kiln_core::Digest;

use crate::efficiency::{efficiency, Efficiency};
use crate::entry::read_entries;
use crate::error::{AnalyzeError, Result};
use crate::source::ImageSource;
use crate::tree::LayerTree;
use crate::waste::{waste, Waste};

/// One layer with the step that made it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub index: usize,
    pub digest: Option<Digest>,
    /// From the config's `rootfs.diff_ids`.
    pub diff_id: Option<String>,
    pub archive_name: Option<String>,
    /// The history entry's `created_by` (dive's rule: the next history
    /// entry that made a layer; `(missing)` when the history runs out).
    pub created_by: String,
    /// dive's layer size: Σ of its entries' sizes.
    pub size: u64,
    pub tree: LayerTree,
}

impl Layer {
    /// dive's command column: `created_by` without `/bin/sh -c `.
    pub fn command(&self) -> &str {
        self.created_by
            .strip_prefix("/bin/sh -c ")
            .unwrap_or(&self.created_by)
    }

    /// dive's layer id: the first component of the layer's name in the
    /// archive, else the digest's hex.
    pub fn id(&self) -> String {
        match (&self.archive_name, &self.digest) {
            (Some(n), _) => n.split('/').next().unwrap_or_default().to_string(),
            (None, Some(d)) => d.hex().to_string(),
            (None, None) => String::new(),
        }
    }
}

/// Everything known about an image's layers.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub name: String,
    pub config_digest: Option<Digest>,
    pub layers: Vec<Layer>,
    pub efficiency: Efficiency,
    /// Σ layer sizes.
    pub size_bytes: u64,
    /// Σ sizes of the layers above the first.
    pub user_size_bytes: u64,
    /// dive's wasted bytes.
    pub wasted_bytes: u64,
    /// wasted / user size (NaN or ∞ without user layers, as in dive).
    pub wasted_user_percent: f64,
    pub waste: Waste,
}

/// The history's `created_by` for each of `n` layers, with dive's rule
/// (empty_layer entries skipped; `(missing)` past the history's end).
pub fn steps(source: &ImageSource, n: usize) -> Vec<String> {
    let history = source.config.history.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(n);
    let mut next = 0;
    for _ in 0..n {
        while next < history.len() && history[next].empty_layer.unwrap_or(false) {
            next += 1;
        }
        if next < history.len() {
            out.push(history[next].created_by.clone().unwrap_or_default());
            next += 1;
        } else {
            out.push("(missing)".to_string());
        }
    }
    out
}

/// Reads every layer of `source` with up to `jobs` threads.
pub fn read_trees(source: &ImageSource, jobs: usize) -> Result<Vec<LayerTree>> {
    let n = source.layers.len();
    let slots: Vec<Mutex<Option<Result<LayerTree>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let layer = &source.layers[i];
        let tree = layer
            .bytes
            .open()
            .and_then(read_entries)
            .map(LayerTree::build)
            .map_err(|e| {
                AnalyzeError::Invalid(format!(
                    "layer {} ({}): {e}",
                    i + 1,
                    layer
                        .digest
                        .as_ref()
                        .map(ToString::to_string)
                        .or_else(|| layer.archive_name.clone())
                        .unwrap_or_default()
                ))
            });
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(tree);
        }
    };
    let threads = jobs.clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(AnalyzeError::Invalid("a layer reader failed".into())))
        })
        .collect()
}

/// Analyses `source`.
pub fn analyze(source: &ImageSource) -> Result<Analysis> {
    let jobs = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let trees = read_trees(source, jobs)?;
    Ok(from_trees(source, trees))
}

/// The analysis of layers already read.
pub fn from_trees(source: &ImageSource, trees: Vec<LayerTree>) -> Analysis {
    let eff = efficiency(&trees);
    let waste = waste(&trees);
    let diff_ids: Vec<String> = source
        .config
        .rootfs
        .as_ref()
        .and_then(|r| r.diff_ids.clone())
        .unwrap_or_default();
    let steps = steps(source, trees.len());
    let layers: Vec<Layer> = trees
        .into_iter()
        .enumerate()
        .map(|(index, tree)| {
            let src = &source.layers[index];
            Layer {
                index,
                digest: src.digest.clone(),
                diff_id: diff_ids.get(index).cloned(),
                archive_name: src.archive_name.clone(),
                created_by: steps[index].clone(),
                size: tree.size,
                tree,
            }
        })
        .collect();
    let size_bytes = layers.iter().map(|l| l.size).sum();
    let user_size_bytes = layers.iter().skip(1).map(|l| l.size).sum();
    let wasted_bytes = eff.wasted_bytes;
    Analysis {
        name: source.name.clone(),
        config_digest: source.config_digest.clone(),
        layers,
        wasted_user_percent: wasted_bytes as f64 / user_size_bytes as f64,
        efficiency: eff,
        size_bytes,
        user_size_bytes,
        wasted_bytes,
        waste,
    }
}

impl Analysis {
    /// The step (created_by) of layer `i`.
    pub fn step(&self, i: usize) -> &str {
        self.layers
            .get(i)
            .map_or("(missing)", |l| l.created_by.as_str())
    }
}

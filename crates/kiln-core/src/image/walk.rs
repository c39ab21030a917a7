//! The one walk over an image graph: index → manifests → config and
//! layers. The store's GC and check, `kiln copy`, `save` and anything else
//! that follows an image's blobs use it, over any [`Provider`].

use std::collections::HashSet;

use super::{Descriptor, RawManifest, MAX_MANIFEST_BYTES};
use crate::content::{ContentError, Provider};
use crate::Digest;

/// What a node of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Index,
    Manifest,
    Config,
    Layer,
    /// A manifest's `subject`, or a descriptor of an unknown media type in
    /// an index: named, not followed.
    Other,
}

/// One descriptor met on the walk.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub descriptor: &'a Descriptor,
    pub kind: NodeKind,
    /// The index or manifest that named it (`None` for the root).
    pub parent: Option<&'a Digest>,
}

/// What the visitor wants done with a node's children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Descend,
    Skip,
}

/// Walks from `root`, each digest once, parents before children. The
/// visitor decides whether to follow an index's or manifest's children
/// (`Visit::Skip` on an index entry leaves that platform out). A blob the
/// source cannot read, or a document that does not parse, goes to
/// `unreadable`: fail (the default, `Err(e)`), or record it and go on
/// (`Ok(())`), as GC's check does.
pub fn walk<P: Provider + ?Sized, E: From<ContentError>>(
    source: &P,
    root: &Descriptor,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<Visit, E>,
    unreadable: &mut dyn FnMut(&Node<'_>, E) -> Result<(), E>,
) -> Result<(), E> {
    let mut seen = HashSet::new();
    step(source, root, None, &mut seen, visit, unreadable)
}

fn kind_of(d: &Descriptor) -> NodeKind {
    if d.is_index() {
        NodeKind::Index
    } else if d.is_manifest() {
        NodeKind::Manifest
    } else {
        NodeKind::Other
    }
}

fn step<P: Provider + ?Sized, E: From<ContentError>>(
    source: &P,
    d: &Descriptor,
    parent: Option<&Digest>,
    seen: &mut HashSet<Digest>,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<Visit, E>,
    unreadable: &mut dyn FnMut(&Node<'_>, E) -> Result<(), E>,
) -> Result<(), E> {
    if !seen.insert(d.digest.clone()) {
        return Ok(());
    }
    let node = Node {
        descriptor: d,
        kind: kind_of(d),
        parent,
    };
    if visit(&node)? == Visit::Skip || node.kind == NodeKind::Other {
        return Ok(());
    }
    let what = format!("manifest {}", d.digest);
    // Read capped and verified, whatever the source: a layout or archive
    // from elsewhere is as untrusted as a registry.
    let doc = match source
        .read_capped(&d.digest, MAX_MANIFEST_BYTES)
        .and_then(|bytes| Ok(RawManifest::new(bytes, Some(&d.media_type), &what)?))
    {
        Ok(doc) => doc,
        Err(e) => return unreadable(&node, e.into()),
    };
    if doc.is_index() {
        let index = match doc.index(&what) {
            Ok(i) => i,
            Err(e) => return unreadable(&node, ContentError::from(e).into()),
        };
        for m in &index.manifests {
            step(source, m, Some(&d.digest), seen, visit, unreadable)?;
        }
    } else {
        let m = match doc.manifest(&what) {
            Ok(m) => m,
            Err(e) => return unreadable(&node, ContentError::from(e).into()),
        };
        let children = std::iter::once((&m.config, NodeKind::Config))
            .chain(m.layers.iter().map(|l| (l, NodeKind::Layer)));
        for (child, kind) in children {
            if seen.insert(child.digest.clone()) {
                visit(&Node {
                    descriptor: child,
                    kind,
                    parent: Some(&d.digest),
                })?;
            }
        }
    }
    Ok(())
}

/// Every digest reachable from `root` (the root first, then parents before
/// children), following every platform. Fails on the first unreadable
/// document.
pub fn reachable<P: Provider + ?Sized>(
    source: &P,
    root: &Descriptor,
) -> Result<Vec<Descriptor>, ContentError> {
    let mut out = Vec::new();
    walk::<P, ContentError>(
        source,
        root,
        &mut |n| {
            out.push(n.descriptor.clone());
            Ok(Visit::Descend)
        },
        &mut |_, e| Err(e),
    )?;
    Ok(out)
}

//! The one walk over an image graph: index → manifests → config and
//! layers. The store's GC and check, `kiln copy`, `save` and anything else
//! that follows an image's blobs use it, over any [`Provider`]; pull uses
//! it over a registry through [`walk_with`], whose reads are futures.

use std::collections::HashSet;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::{Descriptor, RawManifest, MAX_MANIFEST_BYTES};
use crate::content::{ContentError, Provider};
use crate::{Digest, ErrorKind};

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
    let read = |d: &Descriptor| {
        std::future::ready(
            source
                .read_capped(&d.digest, MAX_MANIFEST_BYTES)
                .map_err(E::from),
        )
    };
    // A provider reads synchronously: every await of the walk is ready.
    ready_now(walk_with(root, read, visit, unreadable))
}

/// [`walk`] over a source read asynchronously (a registry over HTTP):
/// `fetch` gets the bytes of each index and manifest the walk follows,
/// which the walk caps and verifies against the descriptor's digest
/// whatever the source.
pub async fn walk_with<E, F, Fut, V, U>(
    root: &Descriptor,
    mut fetch: F,
    mut visit: V,
    mut unreadable: U,
) -> Result<(), E>
where
    E: From<ContentError>,
    F: FnMut(&Descriptor) -> Fut,
    Fut: Future<Output = Result<Vec<u8>, E>>,
    V: FnMut(&Node<'_>) -> Result<Visit, E>,
    U: FnMut(&Node<'_>, E) -> Result<(), E>,
{
    let mut seen = HashSet::new();
    // Depth first, children in order: (descriptor, who named it).
    let mut todo: Vec<(Descriptor, Option<Digest>)> = vec![(root.clone(), None)];
    while let Some((d, parent)) = todo.pop() {
        if !seen.insert(d.digest.clone()) {
            continue;
        }
        let node = Node {
            descriptor: &d,
            kind: kind_of(&d),
            parent: parent.as_ref(),
        };
        if visit(&node)? == Visit::Skip || node.kind == NodeKind::Other {
            continue;
        }
        let what = format!("manifest {}", d.digest);
        let doc = match fetch(&d)
            .await
            .and_then(|bytes| Ok(document(&d, bytes, &what)?))
        {
            Ok(doc) => doc,
            Err(e) => {
                unreadable(&node, e)?;
                continue;
            }
        };
        if doc.is_index() {
            match doc.index(&what) {
                Ok(index) => todo.extend(
                    index
                        .manifests
                        .into_iter()
                        .rev()
                        .map(|m| (m, Some(d.digest.clone()))),
                ),
                Err(e) => unreadable(&node, ContentError::from(e).into())?,
            }
            continue;
        }
        let m = match doc.manifest(&what) {
            Ok(m) => m,
            Err(e) => {
                unreadable(&node, ContentError::from(e).into())?;
                continue;
            }
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

/// An index or manifest as fetched: capped and verified, as untrusted as
/// any source (a layout or archive from elsewhere, a registry).
fn document(d: &Descriptor, bytes: Vec<u8>, what: &str) -> Result<RawManifest, ContentError> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ContentError::other(
            ErrorKind::InvalidInput,
            format!("{what} is larger than {MAX_MANIFEST_BYTES} bytes"),
        ));
    }
    let actual = Digest::sha256(&bytes);
    if actual != d.digest {
        return Err(ContentError::other(
            ErrorKind::Integrity,
            format!("{what}: the content has digest {actual}"),
        ));
    }
    Ok(RawManifest::new(bytes, Some(&d.media_type), what)?)
}

/// Runs a future whose every await is ready at once (the walk over a
/// synchronous provider), without an executor.
fn ready_now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // Never pending: each await is a ready future.
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
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

//! Multi-platform builds (`--platform linux/amd64,linux/arm64`): one
//! [`build`] per target platform, run in parallel (at most `parallel` at
//! once), then an OCI image index over their images, tagged in the store.
//!
//! Each platform's build is an ordinary build whose request names that
//! target platform (and the host as the build platform). What they share
//! they share through the step cache: a stage whose steps do not depend on
//! the target (`FROM --platform=$BUILDPLATFORM` without `TARGET*` ARGs) has
//! the same keys in every build, and the `once` lock makes the second
//! build wait for the first build's record instead of running the step
//! again. The platform images are not tagged themselves; the index is, and
//! it holds them (the store's GC walks from it), so `kiln images` shows the
//! image once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kiln_core::image::Index;
use kiln_core::{Digest, ImageRef, Platform};
use kiln_store::{IndexEntry, IndexEntryExt, Store};

use crate::attestation::Statement;
use crate::engine::{build_in, BuildRequest, BuildResult, Progress};
use crate::error::{BuildError, Result};

/// One platform's image of a multi-platform build.
pub struct PlatformImage {
    pub platform: Platform,
    pub result: BuildResult,
}

/// What a multi-platform build made.
pub struct MultiResult {
    /// The index's entry in the store (its digest is the image ID docker
    /// shows for a multi-platform image).
    pub entry: IndexEntry,
    /// Each platform's image, in the order of the requests.
    pub images: Vec<PlatformImage>,
}

/// The statements to attest about one platform's image (`--sbom`,
/// `--provenance`); an error fails the build.
pub type Attest<'a> =
    dyn Fn(&PlatformImage) -> std::result::Result<Vec<Statement>, String> + Sync + 'a;

/// Builds every request (one per platform, none tagged) with at most
/// `parallel` at once, then tags an index over their images with `tags`
/// (and, with `attest`, an attestation manifest per image).
/// The first failure is returned once the builds under way have ended.
pub fn build_platforms(
    store: &Store,
    reqs: &[BuildRequest],
    tags: &[ImageRef],
    parallel: usize,
    progress: &dyn Progress,
    attest: Option<&Attest<'_>>,
) -> Result<MultiResult> {
    // No platform's build starts while another platform cannot be run.
    for req in reqs {
        crate::platform::check_emulation(req)?;
    }
    let next_request = AtomicUsize::new(0);
    let step_ids = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<BuildResult>>>> =
        Mutex::new(reqs.iter().map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    let made_here = crate::once::MadeHere::default();
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, reqs.len().max(1)) {
            s.spawn(|| loop {
                let i = next_request.fetch_add(1, Ordering::SeqCst);
                let Some(req) = reqs.get(i) else { return };
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let shown = Prefixed {
                    inner: progress,
                    platform: req.platform.to_string(),
                    ids: Mutex::new(HashMap::new()),
                    next: &step_ids,
                };
                let r = build_in(store, req, &shown, Some(&made_here));
                if r.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // The first failure in request order (a later platform may not have
    // started once one failed).
    if let Some(i) = results.iter().position(|r| matches!(r, Some(Err(_)))) {
        if let Some(Err(e)) = results.swap_remove(i) {
            return Err(e);
        }
    }
    let mut images = Vec::new();
    for (req, r) in reqs.iter().zip(results) {
        let result = r.ok_or_else(|| {
            BuildError::Internal(format!("the build for {} did not run", req.platform))
        })??;
        images.push(PlatformImage {
            platform: req.platform.clone(),
            result,
        });
    }
    let mut attestations = Vec::new();
    for i in images.iter().filter(|_| attest.is_some()) {
        let statements = attest.map_or(Ok(Vec::new()), |a| a(i)).map_err(|e| {
            BuildError::Internal(format!("attesting the {} image: {e}", i.platform))
        })?;
        if statements.is_empty() {
            continue;
        }
        let e = &i.result.entry;
        let image = kiln_core::image::Descriptor::new(&e.media_type, e.digest.clone(), e.size);
        attestations.push(crate::attestation::attestation_manifest(
            store,
            &image,
            &statements,
        )?);
    }
    let entry = write_index(store, &images, attestations, tags)?;
    Ok(MultiResult { entry, images })
}

/// The index over `images` into the store, tagged `tags`; the platform
/// images' own untagged entries are dropped (the index holds them).
fn write_index(
    store: &Store,
    images: &[PlatformImage],
    attestations: Vec<kiln_core::image::Descriptor>,
    tags: &[ImageRef],
) -> Result<IndexEntry> {
    let mut children = Vec::new();
    for i in images {
        let image = store.load_image(&i.result.entry)?;
        children.push(store.list_entry(&image)?);
    }
    // After the images, as BuildKit orders them.
    children.extend(attestations);
    let digests: Vec<Digest> = children.iter().map(|c| c.digest.clone()).collect();
    let index = Index::oci(children);
    let entry = match tags.split_first() {
        Some((first, rest)) => {
            let entry = store.write_list(first, index)?;
            store.name_image(&entry, rest)?;
            entry
        }
        None => {
            let media_type = kiln_store::list_media_type(&index.manifests);
            let bytes = index.to_bytes();
            let digest = store.blobs().put(&bytes, None)?;
            let entry = IndexEntry::new(media_type, digest, bytes.len() as u64);
            store.name_image(&entry, &[])?;
            entry
        }
    };
    store.update_index(|index| {
        index
            .manifests
            .retain(|e| !(digests.contains(&e.digest) && e.name().is_none()));
        Ok(())
    })?;
    Ok(entry)
}

/// One platform's progress: its platform before each stage's name
/// (`[linux/arm64 stage-0] RUN …`, as BuildKit shows it) and step ids
/// unique across the platforms' builds.
struct Prefixed<'a> {
    inner: &'a dyn Progress,
    platform: String,
    ids: Mutex<HashMap<usize, usize>>,
    next: &'a AtomicUsize,
}

impl Prefixed<'_> {
    fn id(&self, id: usize) -> usize {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        *ids.entry(id)
            .or_insert_with(|| self.next.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

impl Progress for Prefixed<'_> {
    fn step(&self, id: usize, stage: &str, text: &str) {
        let id = self.id(id);
        self.inner
            .step(id, &format!("{} {stage}", self.platform), text);
    }

    fn done(&self, id: usize, cached: bool, took: Duration) {
        self.inner.done(self.id(id), cached, took);
    }

    fn output(&self, id: usize, line: &str) {
        self.inner.output(self.id(id), line);
    }

    fn warn(&self, message: &str) {
        self.inner.warn(&format!("{}: {message}", self.platform));
    }
}

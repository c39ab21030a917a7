//! `kiln build --platform A,B,…`: the platform list, one request per
//! platform, and what happens after the builds (the index's ID, `--push`).
//! The builds themselves and the index are `kiln_build::multi`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use kiln_build::attestation::Statement;
use kiln_build::cache_io::{CacheMetadata, CacheTo};
use kiln_build::export::Output;
use kiln_build::multi::PlatformImage;
use kiln_build::{BuildRequest, Progress};
use kiln_core::image::Descriptor;
use kiln_core::{ImageRef, Platform};
use kiln_store::Store;

use super::registry::RegistryArgs;

/// `--platform`'s list (the host's when not given), in the order given,
/// each once.
pub(crate) fn platforms(arg: Option<&str>) -> anyhow::Result<Vec<Platform>> {
    let Some(arg) = arg else {
        return Ok(vec![Platform::host()]);
    };
    let mut out: Vec<Platform> = Vec::new();
    for p in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let platform: Platform = p
            .parse()
            .map_err(|e| anyhow::anyhow!("--platform {p}: {e}"))?;
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    if out.is_empty() {
        bail!("--platform {arg:?}: name at least one platform, e.g. linux/amd64,linux/arm64");
    }
    Ok(out)
}

/// Whether `-o` asks for a push (`type=registry`, buildx's spelling).
pub(crate) fn is_registry_output(spec: Option<&str>) -> bool {
    spec.is_some_and(|s| s.split(',').any(|f| f == "type=registry"))
}

/// A request like `first` for another target platform (no base fetcher:
/// the caller gives each its own).
pub(crate) fn request_like(first: &BuildRequest, platform: Platform) -> BuildRequest {
    BuildRequest {
        dockerfile: first.dockerfile.clone(),
        context_dir: first.context_dir.clone(),
        ignore: first.ignore.clone(),
        build_args: first.build_args.clone(),
        target: first.target.clone(),
        no_cache: first.no_cache,
        no_cache_filter: first.no_cache_filter.clone(),
        labels: first.labels.clone(),
        secrets: first.secrets.clone(),
        network: first.network.clone(),
        tags: first.tags.clone(),
        runtime: first.runtime.clone(),
        platform,
        build_platform: first.build_platform.clone(),
        backend: first.backend,
        fetch_base: None,
        source_date_epoch: first.source_date_epoch,
        add_hosts: first.add_hosts.clone(),
        allow_insecure: first.allow_insecure,
        always_pull: first.always_pull,
        // Every platform reads the same imported caches (their step keys
        // name the platform, so each finds its own records) and collects
        // its records for the one export `Multi::run` merges.
        cache_from: first.cache_from.clone(),
        cache_export: first.cache_export,
        inline_cache: first.inline_cache,
    }
}

/// What a multi-platform build does besides building.
pub(crate) struct Multi<'a> {
    pub tags: &'a [ImageRef],
    pub iidfile: Option<&'a Path>,
    pub quiet: bool,
    /// `--push`: the registry flags to push with.
    pub push: Option<&'a RegistryArgs>,
    /// `--cache-to type=registry|local`: one artifact of every platform's
    /// records (registry flags from `registry`).
    pub cache_to: Option<&'a CacheTo>,
    pub registry: &'a RegistryArgs,
    /// `-o type=oci|local|tar` (`type=docker` is refused: it cannot hold
    /// an index).
    pub output: Option<&'a Output>,
    /// `--sbom`: an SPDX statement per platform image, in the index.
    pub sbom: bool,
    /// `--provenance`: a SLSA provenance statement per platform image, in
    /// the index.
    pub provenance: Option<super::provenance::Inputs<'a>>,
}

impl Multi<'_> {
    pub(crate) fn run(
        &self,
        store: &Store,
        reqs: &[BuildRequest],
        progress: Box<dyn Progress>,
        t0: Instant,
    ) -> anyhow::Result<ExitCode> {
        if let Some(o) = self.output {
            kiln_build::export::check_index_output(o)?;
        }
        // The machine's cores, not the platforms: each build runs its own
        // stages in parallel too.
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let name = self.tags.first();
        let attest = |i: &PlatformImage| -> Result<Vec<Statement>, String> {
            let mut out = Vec::new();
            if self.sbom {
                let shown = name.map_or_else(|| i.result.id.to_string(), ToString::to_string);
                let s = super::sbom::statement(store, &i.result.entry, &shown, i.result.epoch)
                    .map_err(|e| format!("SBOM: {e:#}"))?;
                out.push(Statement {
                    predicate_type: kiln_sbom::attest::SPDX_PREDICATE.to_string(),
                    bytes: serde_json::to_vec(&s).map_err(|e| e.to_string())?,
                });
            }
            if let Some(inputs) = &self.provenance {
                let (_, uri, s) =
                    super::provenance::statement(store, &i.result.entry, name, inputs)
                        .map_err(|e| format!("provenance: {e:#}"))?;
                out.push(Statement {
                    predicate_type: uri,
                    bytes: serde_json::to_vec(&s).map_err(|e| e.to_string())?,
                });
            }
            Ok(out)
        };
        let attesting = self.sbom || self.provenance.is_some();
        let result = kiln_build::multi::build_platforms(
            store,
            reqs,
            self.tags,
            parallel,
            progress.as_ref(),
            attesting.then_some(&attest as &kiln_build::multi::Attest<'_>),
        );
        drop(progress);
        let result = result?;
        let id = &result.entry.digest;
        if let Some(f) = self.iidfile {
            std::fs::write(f, id.to_string()).with_context(|| format!("write {}", f.display()))?;
        }
        if self.quiet {
            println!("{id}");
        } else {
            for i in &result.images {
                eprintln!("#done writing image {} for {}", i.result.id, i.platform);
            }
            let shown: Vec<String> = result
                .images
                .iter()
                .map(|i| i.platform.to_string())
                .collect();
            eprintln!(
                "#done writing image index {id} ({}) in {:.1}s",
                shown.join(", "),
                t0.elapsed().as_secs_f64()
            );
            for t in self.tags {
                eprintln!("#done naming to {t}");
            }
            if attesting {
                eprintln!(
                    "#done attaching attestation manifests for {} images to the index",
                    result.images.len()
                );
            }
        }
        if let Some(output) = self.output {
            let images = result
                .images
                .iter()
                .map(|i| Ok((i.platform.clone(), store.load_image(&i.result.entry)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let e = &result.entry;
            let index = Descriptor::new(&e.media_type, e.digest.clone(), e.size);
            kiln_build::export::export_index(store, &index, &images, self.tags, output)?;
        }
        if let Some(to) = self.cache_to {
            // One artifact for all platforms, as buildx exports one cache
            // manifest list for a multi-platform build.
            let parts = result.images.iter().filter_map(|i| i.result.cache.clone());
            if let Some(meta) = CacheMetadata::merge(parts) {
                super::build_cache::export(store, to, &meta, self.registry, self.quiet)?;
            }
        }
        if let Some(registry) = self.push {
            super::push::push_tags(store, registry, &result.entry, self.tags, self.quiet)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

//! `kiln manifest inspect [LIST] MANIFEST`: a list made in the store
//! first, then the registry, read without pulling; docker's output.

use std::process::ExitCode;

use kiln_core::image::Descriptor;
use kiln_core::{media_types, ImageRef};
use kiln_registry_client::{Client, Repo};
use kiln_store::Store;

use super::print::{self, Fetched};
use crate::commands::registry::{block_on, RegistryArgs};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A manifest list in the store, then an image in it; or only an
    /// image or list reference
    #[arg(required = true, num_args = 1..=2, value_name = "[MANIFEST_LIST] MANIFEST")]
    refs: Vec<String>,
    /// Output additional info including layers and platform
    #[arg(short, long)]
    verbose: bool,
    /// Allow communication with an insecure (plain HTTP) registry
    #[arg(long = "insecure")]
    plain_http: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let text = match args.refs.as_slice() {
        [list, image] => one_of_local_list(store, list, image, args.verbose)?,
        [reference] => {
            let r: ImageRef = reference.parse()?;
            match local_list(store, &r, args.verbose)? {
                Some(text) => text,
                None => {
                    let registry = super::with_insecure(args.registry.clone(), args.plain_http, &r);
                    let client = registry.client()?;
                    block_on(remote(&client, &r, args.verbose))??
                }
            }
        }
        _ => anyhow::bail!("\"kiln manifest inspect\" requires 1 or 2 arguments"),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The image `image` as listed in the local list `list`.
fn one_of_local_list(
    store: &Store,
    list: &str,
    image: &str,
    verbose: bool,
) -> anyhow::Result<String> {
    let list_ref: ImageRef = list.parse()?;
    let Some((_, index)) = store.read_list(&list_ref)? else {
        anyhow::bail!(
            "No such manifest list: {list}; make one with `kiln manifest create {list} IMAGE...`"
        );
    };
    let missing = || anyhow::anyhow!("No such manifest: {image} in {list}");
    let (_, wanted) = store.resolve(image).map_err(|_| missing())?;
    let entry = index
        .manifests
        .iter()
        .find(|m| m.digest == wanted.manifest_digest)
        .ok_or_else(missing)?;
    let raw = store.blobs().read(&entry.digest)?;
    if verbose {
        let reference: ImageRef = image.parse()?;
        return print::verbose(&Fetched {
            reference: reference.to_string(),
            descriptor: entry.clone(),
            raw,
        });
    }
    print::manifest(&raw)
}

/// A list made in the store under `r`, if there is one.
fn local_list(store: &Store, r: &ImageRef, verbose: bool) -> anyhow::Result<Option<String>> {
    let Ok(Some((_, index))) = store.read_list(r) else {
        return Ok(None);
    };
    if !verbose {
        return Ok(Some(print::list(&index.manifests)));
    }
    let fetched = index
        .manifests
        .iter()
        .map(|m| {
            Ok(Fetched {
                reference: child_ref(r, m),
                descriptor: m.clone(),
                raw: store.blobs().read(&m.digest)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(print::verbose_list(&fetched)?))
}

/// docker's name of a list's child: the list's reference, `@digest` added.
fn child_ref(list: &ImageRef, child: &Descriptor) -> String {
    match list.digest() {
        Some(_) => list.with_digest(child.digest.clone()).to_string(),
        None => format!("{list}@{}", child.digest),
    }
}

/// Reads `r` from its registry: a manifest as received, or a list with
/// each child fetched (and verified) as docker's client does.
async fn remote(client: &Client, r: &ImageRef, verbose: bool) -> anyhow::Result<String> {
    let repo = Repo::of(r);
    let at = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, t) => t.unwrap_or("latest").to_string(),
    };
    let top = client.get_manifest(&repo, &at).await?;
    if !top.is_index() {
        if !verbose {
            return print::manifest(&top.bytes);
        }
        let manifest = top.manifest(&r.to_string())?;
        let config = client
            .read_blob(
                &repo,
                &manifest.config.digest,
                kiln_registry_client::manifest::MAX_CONFIG_BYTES,
            )
            .await?;
        let mut descriptor = top.descriptor();
        descriptor.platform = Some(print::platform_from_config(&config));
        return print::verbose(&Fetched {
            reference: r.to_string(),
            descriptor,
            raw: top.bytes,
        });
    }
    let index = top.index(&r.to_string())?;
    let mut fetched = Vec::with_capacity(index.manifests.len());
    for entry in &index.manifests {
        let child = client
            .get_manifest(&repo, &entry.digest.to_string())
            .await?;
        if !media_types::is_manifest(&child.media_type) {
            anyhow::bail!(
                "unsupported manifest type: {} in {r} ({})",
                child.media_type,
                entry.digest
            );
        }
        let mut descriptor = child.descriptor();
        descriptor.platform = Some(
            entry
                .platform
                .clone()
                .unwrap_or_else(|| kiln_core::Platform::new("", "", None)),
        );
        fetched.push(Fetched {
            reference: child_ref(r, entry),
            descriptor,
            raw: child.bytes,
        });
    }
    if verbose {
        return print::verbose_list(&fetched);
    }
    let descriptors: Vec<Descriptor> = fetched.into_iter().map(|f| f.descriptor).collect();
    Ok(print::list(&descriptors))
}

//! `kiln imagetools inspect|create`: buildx's verbs for images in a
//! registry.
//!
//! `inspect` reads a manifest or index straight from the registry (no
//! pull) and prints buildx's summary (`Name`/`MediaType`/`Digest`, then
//! each manifest of an index with its platform), the raw bytes with
//! `--raw`, or a Go template over `.Name`, `.Manifest` and `.Image`.
//!
//! `create -t TAG SRC...` joins images and indexes into one index, as
//! buildx does: an index source contributes its manifests, a manifest
//! source its own descriptor with the platform its config names, each
//! digest once; Docker schema 2 children only make a Docker manifest list,
//! anything else an OCI index. kiln moves the sources through its store
//! (pulled by digest, untagged, every blob verified) and pushes the index
//! with the one push code, which skips and mounts what the target
//! repository can already reach; buildx copies registry to registry
//! instead, which spares the local download of layers the store lacks.

use std::process::ExitCode;

use kiln_core::gofmt::json_indent;
use kiln_core::image::{Descriptor, Index};
use kiln_core::{media_types, ImageRef};
use kiln_registry_client::{pull, push, Client, PullOptions, Repo, Silent};
use kiln_store::{list_media_type, IndexEntry, Store};
use kiln_template::{Template, Value};

mod go_structs;

use go_structs::{go_value, Shape};

use super::manifest::print::platform_from_config;
use super::registry::{block_on, RegistryArgs, View};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Show details of an image in the registry
    Inspect(InspectArgs),
    /// Create a new image based on source images
    Create(CreateArgs),
}

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The image in its registry (NAME[:TAG|@DIGEST])
    name: String,
    /// Show original, unformatted JSON manifest
    #[arg(long)]
    raw: bool,
    /// Format the output using the given Go template (.Name, .Manifest, .Image)
    #[arg(long, default_value = "{{.Manifest}}")]
    format: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// Source images and indexes (registry references)
    #[arg(required = true)]
    sources: Vec<String>,
    /// Set reference for new image; repeatable
    #[arg(short, long = "tag")]
    tags: Vec<String>,
    /// Show final image instead of pushing
    #[arg(long)]
    dry_run: bool,
    /// Append to existing manifest
    #[arg(long)]
    append: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(store: &Store, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Inspect(a) => inspect(a),
        Command::Create(a) => create(store, a),
    }
}

/// `name:tag` or `name@digest`, buildx's `latest` added when neither.
fn location(input: &str) -> anyhow::Result<ImageRef> {
    Ok(input.parse::<ImageRef>()?)
}

fn at(r: &ImageRef) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, t) => t.unwrap_or("latest").to_string(),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let r = location(&args.name)?;
    let client = args.registry.client()?;
    let repo = Repo::of(&r);
    let top = block_on(client.get_manifest(&repo, &at(&r)))??;
    if args.raw {
        // As received, no newline added: the bytes are what the digest names.
        print!("{}", String::from_utf8_lossy(&top.bytes));
        return Ok(ExitCode::SUCCESS);
    }
    let whole = {
        let t = args.format.trim();
        let inner = t.strip_prefix("{{").and_then(|s| s.strip_suffix("}}"));
        inner.is_some_and(|s| s.trim() == ".Manifest")
    };
    if whole {
        print!(
            "{}",
            summary(&r, &top.media_type, &top.digest.to_string(), &top)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let data = template_input(&client, &r, &top)?;
    let template = Template::parse(&args.format)?
        .json_tag_fields()
        .json_indent("  ");
    let out = template.execute(&data)?;
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// buildx's summary: a tabwriter block (padding 1) for the top, then one
/// for the manifests of an index, each with its platform.
fn summary(
    r: &ImageRef,
    media_type: &str,
    digest: &str,
    top: &kiln_core::image::RawManifest,
) -> anyhow::Result<String> {
    let mut out = align(&[
        ("Name:", r.to_string()),
        ("MediaType:", media_type.to_string()),
        ("Digest:", digest.to_string()),
    ]);
    if !media_types::is_index(media_type) {
        return Ok(out);
    }
    out.push_str(&align(&[
        ("", String::new()),
        ("Manifests:", String::new()),
    ]));
    let index = top.index(&r.to_string())?;
    let mut block: Vec<(String, String)> = Vec::new();
    for (i, m) in index.manifests.iter().enumerate() {
        if i != 0 {
            block.push((String::new(), String::new()));
        }
        block.push(("  Name:".into(), format!("{r}@{}", m.digest)));
        block.push(("  MediaType:".into(), m.media_type.clone()));
        if let Some(p) = &m.platform {
            block.push(("  Platform:".into(), platform_text(p)));
            if let Some(v) = &p.os_version {
                block.push(("  OSVersion:".into(), v.clone()));
            }
            if !p.os_features.is_empty() {
                block.push(("  OSFeatures:".into(), p.os_features.join(", ")));
            }
            if !m.urls.is_empty() {
                block.push(("  URLs:".into(), m.urls.join(", ")));
            }
            if !m.annotations.is_empty() {
                // buildx flushes its writer here: what came before is one
                // aligned block, the annotations another.
                block.push(("  Annotations:".into(), String::new()));
                out.push_str(&align_owned(&block));
                block.clear();
                let notes: Vec<(String, String)> = m
                    .annotations
                    .iter()
                    .map(|(k, v)| (format!("    {k}:"), v.clone()))
                    .collect();
                out.push_str(&align_owned(&notes));
            }
        }
    }
    out.push_str(&align_owned(&block));
    Ok(out)
}

/// containerd's `platforms.Format`: os/arch[/variant], `unknown` for an
/// empty os.
fn platform_text(p: &kiln_core::Platform) -> String {
    let os = if p.os.is_empty() { "unknown" } else { &p.os };
    let mut parts = vec![os.to_string()];
    if !p.architecture.is_empty() {
        parts.push(p.architecture.clone());
    }
    if let Some(v) = p.variant.as_ref().filter(|v| !v.is_empty()) {
        parts.push(v.clone());
    }
    parts.join("/")
}

fn align(rows: &[(&str, String)]) -> String {
    let owned: Vec<(String, String)> = rows
        .iter()
        .map(|(a, b)| ((*a).to_string(), b.clone()))
        .collect();
    align_owned(&owned)
}

/// Go's tabwriter (minwidth 0, padding 1) over `label\tvalue` lines: the
/// label column as wide as its widest cell plus one.
fn align_owned(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (label, value) in rows {
        out.push_str(label);
        out.extend(std::iter::repeat_n(' ', width - label.chars().count()));
        out.push_str(value);
        out.push('\n');
    }
    out
}

/// `.Name`, `.Manifest` (the manifest's descriptor, or the index with its
/// digest and size) and `.Image` (the config; a map by platform for an
/// index with more than one), as buildx hands them to a template: Go
/// structs, found by field name, marshalled in field order.
fn template_input(
    client: &Client,
    r: &ImageRef,
    top: &kiln_core::image::RawManifest,
) -> anyhow::Result<Value> {
    let repo = Repo::of(r);
    let config_of = |manifest: &kiln_core::image::Manifest| -> anyhow::Result<serde_json::Value> {
        let bytes = block_on(client.read_blob(
            &repo,
            &manifest.config.digest,
            kiln_registry_client::manifest::MAX_CONFIG_BYTES,
        ))??;
        Ok(serde_json::from_slice(&bytes)?)
    };
    let (manifest, image) = if top.is_index() {
        let index = top.index(&r.to_string())?;
        let mut images = serde_json::Map::new();
        for m in &index.manifests {
            let Some(p) = m.platform.as_ref().filter(|p| p.os != "unknown") else {
                continue;
            };
            let child = block_on(client.get_manifest(&repo, &m.digest.to_string()))??;
            let parsed = child.manifest(&m.digest.to_string())?;
            images.insert(platform_text(p), config_of(&parsed)?);
        }
        let mut v = serde_json::to_value(&index)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("digest".into(), top.digest.to_string().into());
            o.insert("size".into(), top.bytes.len().into());
        }
        let image = if images.len() == 1 {
            let only = images.into_iter().next().map(|(_, v)| v);
            go_value(&only.unwrap_or_default(), Shape::Image)
        } else {
            go_value(
                &serde_json::Value::Object(images),
                Shape::MapOf(&Shape::Image),
            )
        };
        (go_value(&v, Shape::Index), image)
    } else {
        let parsed = top.manifest(&r.to_string())?;
        let descriptor = serde_json::to_value(top.descriptor())?;
        (
            go_value(&descriptor, Shape::Descriptor),
            go_value(&config_of(&parsed)?, Shape::Image),
        )
    };
    let fields = vec![
        ("name".to_string(), Value::Str(r.to_string())),
        ("manifest".to_string(), manifest),
        ("image".to_string(), image),
    ];
    Ok(Value::typed(
        "imagetools.tplInput",
        fields,
        &["name", "manifest", "image"],
    ))
}

fn create(store: &Store, args: CreateArgs) -> anyhow::Result<ExitCode> {
    if !args.dry_run && args.tags.is_empty() {
        anyhow::bail!("can't push with no tags specified, please set --tag or --dry-run");
    }
    let targets = args
        .tags
        .iter()
        .map(|t| location(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = args.registry.client()?;
    let _lease = store.lease()?;
    let mut sources = args.sources.clone();
    if args.append {
        let first = targets.first().ok_or_else(|| {
            anyhow::anyhow!("--append needs a --tag naming the image to append to")
        })?;
        sources.insert(0, first.to_string());
    }
    let mut children: Vec<Descriptor> = Vec::new();
    for source in &sources {
        for d in source_descriptors(store, &client, source)? {
            match children.iter_mut().find(|c| c.digest == d.digest) {
                // buildx merges: a later platform wins, annotations add up.
                Some(old) => {
                    if d.platform.is_some() {
                        old.platform = d.platform.clone();
                    }
                    old.annotations.extend(d.annotations.clone());
                }
                None => children.push(d),
            }
        }
    }
    let mut index = Index::oci(children);
    index.media_type = Some(list_media_type(&index.manifests).to_string());
    let bytes = index.to_bytes();
    if args.dry_run {
        println!("{}", json_indent(&bytes, "", "  ").unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let digest = store.blobs().put(&bytes, None)?;
    let media_type = index.media_type.clone().unwrap_or_default();
    let entry = IndexEntry::new(&media_type, digest, bytes.len() as u64);
    let view = View::new(false);
    let opts = super::push::push_options(super::push::PushCompression::Gzip, false);
    for target in &targets {
        let pushed = block_on(push(&client, store, &entry, target, &opts, &view))??;
        eprintln!("pushed {target}@{}", pushed.digest);
    }
    Ok(ExitCode::SUCCESS)
}

/// What one source adds: an index's manifests, or a manifest with the
/// platform of its config. The source is pulled by digest into the store
/// (untagged; blobs already there are not fetched).
fn source_descriptors(
    store: &Store,
    client: &Client,
    source: &str,
) -> anyhow::Result<Vec<Descriptor>> {
    let r = location(source)?;
    let repo = Repo::of(&r);
    let top = block_on(client.get_manifest(&repo, &at(&r)))??;
    let pinned = r.with_digest(top.digest.clone());
    let opts = PullOptions {
        platform: None,
        all_platforms: true,
    };
    block_on(pull(client, store, &pinned, &opts, &Silent))??;
    if top.is_index() {
        return Ok(top.index(source)?.manifests);
    }
    let manifest = top.manifest(source)?;
    let config = store.blobs().read(&manifest.config.digest)?;
    let mut d = top.descriptor();
    d.platform = Some(platform_from_config(&config));
    Ok(vec![d])
}

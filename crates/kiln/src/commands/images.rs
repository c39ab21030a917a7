use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::bail;
use kiln_core::{Digest, ImageRef};
use kiln_store::{Image, IndexEntryExt, Store};
use kiln_template::Value;
use serde_json::json;

use crate::format::{created_at, OutputFormat, TimeStyle};
use crate::output::{ago, human_size, human_size_precision};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only images of this repository (and tag); `*`, `?` and `[…]` match as
    /// in docker (`'team/*'`, `'app:1.*'`)
    reference: Option<String>,
    /// Show all images (kiln keeps no intermediate images, so the same list)
    #[arg(short = 'a', long)]
    all: bool,
    /// Show manifest digests
    #[arg(long)]
    digests: bool,
    /// Do not truncate IDs
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Filter: reference=PATTERN, label=KEY[=VALUE], before=IMAGE,
    /// since=IMAGE, dangling=true|false (repeat to combine)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Output: table (default), json, or a Go template ('table {{.ID}}\t{{.Size}}',
    /// fields .ID .Repository .Tag .Digest .CreatedSince .CreatedAt .Size
    /// .Containers .SharedSize .UniqueSize .VirtualSize)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

/// One row of `kiln images`.
pub(crate) struct Row {
    pub name: Option<ImageRef>,
    /// docker's IMAGE ID: the config's digest, or for a multi-platform
    /// image its index's digest (docker 28, containerd store).
    pub id: Digest,
    /// The image (of an index, the host platform's).
    pub image: Image,
    pub size: u64,
    /// When the name (or the untagged entry) was written to the store.
    pub named: Option<SystemTime>,
    /// The digest a registry knows this image by in the name's
    /// repository (pushed there, or pulled from there); docker's DIGEST.
    pub registry_digest: Option<Digest>,
    /// The platforms of a multi-platform image (empty for one image).
    pub platforms: Vec<String>,
}

impl Row {
    fn created(&self) -> Option<SystemTime> {
        self.image
            .config
            .created
            .as_deref()
            .and_then(kiln_core::parse_rfc3339)
    }

    /// The time `images` sorts by: when the image was named in this store;
    /// for entries kiln did not stamp (older stores, other tools' layouts),
    /// its created time, the best estimate of when it could have arrived.
    fn listed_at(&self) -> Option<SystemTime> {
        self.named.or_else(|| self.created())
    }
}

/// Uncompressed size of an image's layers (docker's SIZE), from the
/// recorded layer facts, falling back to the blob size.
pub(crate) fn image_size(store: &Store, image: &Image) -> anyhow::Result<u64> {
    let mut total = 0;
    for layer in image.layer_digests() {
        total += store.layer_size(&layer)?;
    }
    Ok(total)
}

pub(crate) fn rows(store: &Store) -> anyhow::Result<Vec<Row>> {
    let index = store.index()?;
    let mut rows = Vec::new();
    for record in store.images()? {
        let image = store.load_record(&record)?;
        let size = image_size(store, &image)?;
        let pushed = store.pushed_digests(&record.entry.digest);
        // A local manifest's digest is not what a registry serves (push
        // compresses layers): only a push or a pull gives a DIGEST.
        let pulled = record.entry.pulled_digest();
        let is_index = kiln_core::media_types::is_index(&record.entry.media_type);
        let id = if is_index {
            record.entry.digest.clone()
        } else {
            image.id().clone()
        };
        let platforms = if is_index {
            store
                .read_index_blob(&record.entry.digest)
                .map(|i| i.platforms())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if record.names.is_empty() {
            rows.push(Row {
                name: None,
                id: id.clone(),
                image: image.clone(),
                size,
                named: record.entry.named_at(),
                registry_digest: pulled.clone(),
                platforms: platforms.clone(),
            });
        }
        for name in record.names {
            let registry_digest = pushed
                .iter()
                .find(|(repo, _)| *repo == name.name())
                .map(|(_, d)| d.clone())
                .or_else(|| pulled.clone());
            rows.push(Row {
                named: index.find(&name).and_then(|e| e.named_at()),
                name: Some(name),
                id: id.clone(),
                image: image.clone(),
                size,
                registry_digest,
                platforms: platforms.clone(),
            });
        }
    }
    // Newest first, as docker lists them; names break ties for stable output.
    rows.sort_by(|a, b| {
        b.listed_at()
            .cmp(&a.listed_at())
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(rows)
}

/// docker's reference match: the pattern against the familiar reference
/// (`team/app:1.0`), then against the familiar name alone (`team/app`).
/// A pattern without wildcards also matches kiln's way, by normalized
/// reference, so `docker.io/library/busybox` finds `busybox`.
fn matches(pattern: &str, name: &Option<ImageRef>) -> bool {
    let Some(name) = name else { return false };
    if path_match(pattern, &name.familiar()) || path_match(pattern, &name.familiar_name()) {
        return true;
    }
    let Ok(want) = ImageRef::parse(pattern) else {
        return false;
    };
    want.name() == name.name() && want.tag().is_none_or(|t| Some(t) == name.tag())
}

/// `--filter`s parsed, docker's way: `reference` values are ORed; `label`
/// values are ANDed (docker's MatchKVList: every label must match);
/// `before`/`since` each give a bound and all bounds apply; different keys
/// are ANDed.
#[derive(Default)]
struct Filters {
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    before: Vec<SystemTime>,
    since: Vec<SystemTime>,
    dangling: Option<bool>,
}

impl Filters {
    fn parse(store: &Store, args: &[String]) -> anyhow::Result<Filters> {
        let mut f = Filters::default();
        let mut dangling = Vec::new();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                bail!("bad format of filter (expected name=value): {arg:?}");
            };
            match key {
                "reference" => f.references.push(value.to_string()),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "before" | "since" => {
                    let (_, image) = store.resolve(value)?;
                    let Some(t) = image
                        .config
                        .created
                        .as_deref()
                        .and_then(kiln_core::parse_rfc3339)
                    else {
                        bail!("{key}={value}: the image has no creation time to compare with");
                    };
                    if key == "before" {
                        f.before.push(t)
                    } else {
                        f.since.push(t)
                    }
                }
                "dangling" => dangling.push(value.to_string()),
                _ => bail!("Invalid filter '{key}' (images filters: reference, label, before, since, dangling)"),
            }
        }
        // docker: dangling=true if any value is "true", else every value
        // must be "false".
        if !dangling.is_empty() {
            if dangling.iter().any(|v| v == "true" || v == "1") {
                f.dangling = Some(true);
            } else if dangling.iter().all(|v| v == "false" || v == "0") {
                f.dangling = Some(false);
            } else {
                bail!(
                    "Invalid filter 'dangling=[{}]' (use dangling=true or dangling=false)",
                    dangling.join(" ")
                );
            }
        }
        Ok(f)
    }

    fn keep(&self, r: &Row) -> bool {
        if !self.references.is_empty() && !self.references.iter().any(|p| matches(p, &r.name)) {
            return false;
        }
        if self.dangling.is_some_and(|d| d != r.name.is_none()) {
            return false;
        }
        let labels = r
            .image
            .config
            .config
            .as_ref()
            .and_then(|c| c.labels.clone());
        let has = |k: &str, v: &Option<String>| {
            labels
                .as_ref()
                .and_then(|l| l.get(k))
                .is_some_and(|actual| v.as_ref().is_none_or(|want| want == actual))
        };
        if !self.labels.iter().all(|(k, v)| has(k, v)) {
            return false;
        }
        let created = r.created();
        if !self.before.iter().all(|b| created.is_some_and(|c| c < *b)) {
            return false;
        }
        self.since.iter().all(|s| created.is_some_and(|c| c > *s))
    }
}

const HEADERS: [(&str, &str); 11] = [
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let _ = args.all;
    let mut filters = Filters::parse(store, &args.filters)?;
    // docker adds the positional argument as one more reference filter
    // (so it is ORed with --filter reference=…).
    if let Some(r) = &args.reference {
        filters.references.push(r.clone());
    }
    let rows: Vec<Row> = rows(store)?
        .into_iter()
        .filter(|r| filters.keep(r))
        .collect();
    let id = |d: &Digest| {
        if args.no_trunc {
            d.to_string()
        } else {
            d.short().to_string()
        }
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.id.clone()) {
                println!("{}", id(&r.id));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let default_table = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let format = OutputFormat::parse(args.format.as_deref(), default_table)?;
    let mut items = Vec::new();
    let mut json = Vec::new();
    for r in &rows {
        let (repo, tag) = match &r.name {
            Some(n) => (n.familiar_name(), n.tag().unwrap_or("<none>").to_string()),
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        let created = r.image.config.created.clone();
        let fields = [
            ("Containers", "N/A".to_string()),
            ("CreatedAt", created_at(created.as_deref(), TimeStyle::Go)),
            ("CreatedSince", ago(created.as_deref())),
            (
                "Digest",
                r.registry_digest
                    .as_ref()
                    .map_or("<none>".to_string(), Digest::to_string),
            ),
            ("ID", id(&r.id)),
            ("Repository", repo),
            ("SharedSize", "N/A".to_string()),
            ("Size", human_size(r.size)),
            ("Tag", tag),
            ("UniqueSize", "N/A".to_string()),
            ("VirtualSize", human_size_precision(r.size, 4)),
        ];
        let mut doc = serde_json::Map::new();
        for (k, v) in &fields {
            doc.insert(k.to_string(), json!(v));
        }
        // kiln's JSON keeps the config's own created time, as before.
        doc.insert(
            "CreatedAt".into(),
            json!(created.clone().unwrap_or_default()),
        );
        doc.insert("VirtualSize".into(), json!(human_size(r.size)));
        // A multi-platform image is one row; its platforms are in kiln's
        // JSON (docker's template fields stay docker's).
        if !r.platforms.is_empty() {
            doc.insert("Platforms".into(), json!(r.platforms));
        }
        json.push(serde_json::Value::Object(doc));
        items.push(Value::strings("*formatter.imageContext", &fields));
    }
    print!("{}", format.render(&items, &json, &HEADERS)?);
    Ok(ExitCode::SUCCESS)
}

/// Go's `path.Match`, as docker matches image names: the Dockerfile
/// frontend's matcher (a malformed pattern matches nothing).
fn path_match(pattern: &str, name: &str) -> bool {
    kiln_dockerfile::ignore::glob_match(pattern, name).unwrap_or(false)
}

#[cfg(test)]
mod glob_tests {
    use super::path_match;

    #[test]
    fn like_go_path_match() {
        for (p, n, want) in [
            ("team/*", "team/app", true),
            ("team/*", "team/a/b", false),
            ("*", "busybox", true),
            ("busybox:*", "busybox:1.36", true),
            ("bus?box", "busybox", true),
            ("b[a-u]sybox", "busybox", true),
            ("b[^u]sybox", "busybox", false),
            ("app", "apps", false),
            ("a\\*", "a*", true),
            ("[", "a", false),
        ] {
            assert_eq!(path_match(p, n), want, "{p} {n}");
        }
    }
}

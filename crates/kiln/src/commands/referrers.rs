//! `kiln image referrers IMAGE`: the artifacts in the store (signatures,
//! SBOMs, attestations) whose `subject` is the image's manifest, as the
//! distribution spec's referrers API and `oras discover` list them.

use std::process::ExitCode;

use kiln_store::Store;
use kiln_template::Value;
use serde_json::json;

use crate::format::OutputFormat;
use crate::output::human_size;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Image: name, ID or ID prefix, or a manifest digest (sha256:…)
    image: String,
    /// Only artifacts of this type (e.g. application/spdx+json)
    #[arg(long, value_name = "TYPE")]
    artifact_type: Option<String>,
    /// Output: table (default), json, or a Go template (fields .Digest
    /// .ArtifactType .MediaType .Size)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

const HEADERS: [(&str, &str); 4] = [
    ("Digest", "DIGEST"),
    ("ArtifactType", "ARTIFACT TYPE"),
    ("MediaType", "MEDIA TYPE"),
    ("Size", "SIZE"),
];

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    // A manifest digest names the subject directly (it may be an artifact
    // itself, or an image no name points at).
    // (`Digest` parses only a full digest; a short ID prefix is resolved.)
    let subject = match args.image.parse::<kiln_core::Digest>() {
        Ok(d) => d,
        Err(_) => store.resolve(&args.image)?.1.manifest_digest,
    };
    let found = store.referrers(&subject, args.artifact_type.as_deref())?;
    let format = OutputFormat::parse(
        args.format.as_deref(),
        "table {{.Digest}}\t{{.ArtifactType}}\t{{.Size}}",
    )?;
    let mut items = Vec::new();
    let mut docs = Vec::new();
    for d in &found {
        let artifact_type = d.artifact_type.clone().unwrap_or_default();
        items.push(Value::strings(
            "referrer",
            &[
                ("Digest", d.digest.to_string()),
                ("ArtifactType", artifact_type.clone()),
                ("MediaType", d.media_type.clone()),
                ("Size", human_size(d.size)),
            ],
        ));
        docs.push(json!({
            "mediaType": d.media_type,
            "digest": d.digest.to_string(),
            "size": d.size,
            "artifactType": artifact_type,
            "annotations": d.annotations,
        }));
    }
    print!("{}", format.render(&items, &docs, &HEADERS)?);
    Ok(ExitCode::SUCCESS)
}

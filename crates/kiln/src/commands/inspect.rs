use std::process::ExitCode;

use anyhow::bail;
use kiln_store::{Image, ImageRecord, Store};
use serde::Serialize;
use serde_json::{json, Value};

use super::images::image_size;

#[derive(clap::Args)]
pub struct Args {
    /// Images: names, IDs or ID prefixes
    #[arg(required = true)]
    images: Vec<String>,
    /// json (default), or a template with {{.Field.Sub}} and {{json .Field}}
    #[arg(short = 'f', long)]
    format: Option<String>,
}

/// Docker's image inspect document, fields in docker's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    docker_version: String,
    author: String,
    config: Value,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    history: Value,
    descriptor: Value,
    metadata: Value,
}

fn inspect(store: &Store, record: &ImageRecord, image: &Image) -> anyhow::Result<Inspect> {
    // Fields come from the raw config so nothing kiln does not model is lost.
    let raw: Value = serde_json::from_slice(&image.config_bytes)?;
    let text = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Inspect {
        id: image.id().to_string(),
        repo_tags: super::familiar_tags(&record.names),
        repo_digests: store.repo_digests(record),
        parent: String::new(),
        comment: text("comment"),
        created: text("created"),
        docker_version: text("docker_version"),
        author: text("author"),
        config: raw.get("config").cloned().unwrap_or(json!({})),
        architecture: text("architecture"),
        variant: raw
            .get("variant")
            .and_then(Value::as_str)
            .map(str::to_string),
        os: text("os"),
        size: image_size(store, image)?,
        root_fs: json!({
            "Type": "layers",
            "Layers": raw.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([])),
        }),
        history: raw.get("history").cloned().unwrap_or(json!([])),
        descriptor: json!({
            "mediaType": image.manifest_media_type,
            "digest": image.manifest_digest.to_string(),
            "size": store.blobs().size(&image.manifest_digest)?,
        }),
        metadata: json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
    })
}

/// A small subset of Go templates: `{{.A.B}}` and `{{json .A}}`.
fn render(template: &str, doc: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow::anyhow!("template {template:?}: unclosed {{{{"))?;
        let expr = rest[start + 2..start + end].trim();
        let (as_json, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!(
                "template {template:?}: only {{{{.Field}}}} and {{{{json .Field}}}} are supported"
            );
        };
        let mut v = doc;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            v = v.get(key).unwrap_or(&Value::Null);
        }
        match (as_json, v) {
            (false, Value::String(s)) => out.push_str(s),
            (false, Value::Null) => out.push_str("<no value>"),
            _ => out.push_str(&serde_json::to_string(v)?),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let mut docs = Vec::new();
    let mut failed = false;
    for input in &args.images {
        match store.resolve(input) {
            Ok((record, image)) => docs.push(inspect(store, &record, &image)?),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match args.format.as_deref() {
        None | Some("json") => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            docs.serialize(&mut ser)?;
            println!("{}", String::from_utf8(buf)?);
        }
        Some(template) => {
            for d in &docs {
                println!("{}", render(template, &serde_json::to_value(d)?)?);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_field_paths_and_json() {
        let doc = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh"], "User": ""}});
        assert_eq!(render("{{.Id}}", &doc).unwrap(), "sha256:x");
        assert_eq!(render("{{json .Config.Cmd}}!", &doc).unwrap(), "[\"sh\"]!");
        assert_eq!(render("{{.Nope}}", &doc).unwrap(), "<no value>");
        assert!(render("{{range .X}}", &doc).is_err());
    }
}

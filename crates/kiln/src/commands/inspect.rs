use std::process::ExitCode;

use kiln_store::{Image, ImageRecord, Store};
use serde::Serialize;
use serde_json::{json, Value};

use super::images::image_size;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Images: names, IDs or ID prefixes
    #[arg(required = true)]
    images: Vec<String>,
    /// json (default), or a Go template on the document
    /// ('{{.Config.Env}}', '{{json .Config}}', '{{index .RepoTags 0}}')
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only objects of this type: image, or container (kiln has none yet)
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    kind: Option<Kind>,
    /// Display total file sizes (docker: containers' sizes; images always
    /// show Size and VirtualSize)
    #[arg(short = 's', long)]
    size: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Image,
    Container,
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
    virtual_size: u64,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    history: Value,
    descriptor: Value,
    metadata: Value,
}

fn inspect(store: &Store, record: &ImageRecord, image: &Image) -> anyhow::Result<Inspect> {
    // Fields come from the raw config so nothing kiln does not model is lost.
    let raw: Value = serde_json::from_slice(&image.config_bytes)?;
    let size = image_size(store, image)?;
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
        size,
        virtual_size: size,
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

/// docker's `container.Config` fields. docker runs inspect templates on its
/// typed struct, where every field exists; kiln's document holds the
/// image config's own `config`, so the template view adds the absent
/// fields (empty strings, false, or nil for lists, maps and pointers) and
/// `{{.Config.Hostname}}` works as in docker instead of failing.
const CONFIG_FIELDS: [(&str, Value); 25] = [
    ("Hostname", Value::String(String::new())),
    ("Domainname", Value::String(String::new())),
    ("User", Value::String(String::new())),
    ("AttachStdin", Value::Bool(false)),
    ("AttachStdout", Value::Bool(false)),
    ("AttachStderr", Value::Bool(false)),
    ("ExposedPorts", Value::Null),
    ("Tty", Value::Bool(false)),
    ("OpenStdin", Value::Bool(false)),
    ("StdinOnce", Value::Bool(false)),
    ("Env", Value::Null),
    ("Cmd", Value::Null),
    ("Healthcheck", Value::Null),
    ("ArgsEscaped", Value::Bool(false)),
    ("Image", Value::String(String::new())),
    ("Volumes", Value::Null),
    ("WorkingDir", Value::String(String::new())),
    ("Entrypoint", Value::Null),
    ("NetworkDisabled", Value::Bool(false)),
    ("MacAddress", Value::String(String::new())),
    ("OnBuild", Value::Null),
    ("Labels", Value::Null),
    ("StopSignal", Value::String(String::new())),
    ("StopTimeout", Value::Null),
    ("Shell", Value::Null),
];

/// Fields of docker's Config that are Go maps: a missing key in them is
/// `<no value>` (`{{.Config.Labels.nope}}`), not an error.
const CONFIG_MAPS: [&str; 3] = ["Labels", "ExposedPorts", "Volumes"];

/// The document as template data, with docker's Config fields filled in.
fn template_view(doc: &Inspect) -> anyhow::Result<kiln_template::Value> {
    use kiln_template::Value as T;
    let mut v = serde_json::to_value(doc)?;
    // Top-level fields docker's JSON omits when empty but its struct has.
    if let Some(top) = v.as_object_mut() {
        for k in ["Variant", "OsVersion", "Container"] {
            top.entry(k).or_insert(Value::String(String::new()));
        }
    }
    if let Some(config) = v.get_mut("Config").and_then(Value::as_object_mut) {
        for (k, zero) in CONFIG_FIELDS {
            config.entry(k).or_insert(zero);
        }
    }
    let mut view = T::from_json(&v);
    if let T::Object(top) = &mut view {
        if let Some(T::Object(config)) = top.get_mut("Config") {
            for key in CONFIG_MAPS {
                if let Some(m) = config.remove(key) {
                    config.insert(key.to_string(), m.into_go_map());
                }
            }
            // docker's HealthConfig times are time.Durations: `30s`.
            if let Some(T::Object(health)) = config.get_mut("Healthcheck") {
                for key in ["Interval", "Timeout", "StartPeriod", "StartInterval"] {
                    if let Some(T::Int(n)) = health.get(key) {
                        let d = T::Duration(*n);
                        health.insert(key.to_string(), d);
                    }
                }
            }
        }
    }
    Ok(view)
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let _ = args.size;
    // A bad template fails before anything is looked up, as in docker.
    let template = match args.format.as_deref() {
        None | Some("") | Some("json") => None,
        // docker's typed struct has `ID`, its JSON `Id`: both work.
        Some(t) => Some(kiln_template::Template::parse(t)?.alias("ID", "Id")),
    };
    let mut docs = Vec::new();
    let mut failed = false;
    for input in &args.images {
        if args.kind == Some(Kind::Container) {
            eprintln!("Error: No such container: {input}");
            failed = true;
            continue;
        }
        match store.resolve(input) {
            Ok((record, image)) => docs.push(inspect(store, &record, &image)?),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match template {
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            docs.serialize(&mut ser)?;
            println!("{}", String::from_utf8(buf)?);
        }
        Some(template) => {
            for d in &docs {
                println!("{}", template.execute(&template_view(d)?)?);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

use std::process::ExitCode;

use kiln_store::{Image, ImageRecord, IndexEntryExt, Store};
use serde::Serialize;
use serde_json::{json, Value};

use super::images::image_size;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Containers or images: names, IDs or ID prefixes (a name that is
    /// both is the container, as in docker)
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
    /// json (default), or a Go template on the document
    /// ('{{.State.Status}}', '{{json .Config}}', '{{index .RepoTags 0}}')
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only objects of this type: container or image
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
    container: String,
    container_config: DockerConfig,
    docker_version: String,
    author: String,
    config: DockerConfig,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    virtual_size: u64,
    graph_driver: Value,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    history: Value,
    descriptor: Value,
    /// A multi-platform image's manifests (docker 28 with the containerd
    /// store: `ManifestSummary`s); absent for a single image.
    #[serde(skip_serializing_if = "Option::is_none")]
    manifests: Option<Value>,
    metadata: Value,
}

fn inspect(store: &Store, record: &ImageRecord, image: &Image) -> anyhow::Result<Inspect> {
    // Fields come from the raw config so nothing kiln does not model is lost.
    let raw: Value = serde_json::from_slice(&image.config_bytes)?;
    let size = image_size(store, image)?;
    let is_index = kiln_core::media_types::is_index(&record.entry.media_type);
    let text = |k: &str| {
        raw.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Inspect {
        // A multi-platform image's ID is its index's digest (docker 28,
        // as `kiln images` shows it); the fields below are the host's image.
        id: if is_index {
            record.entry.digest.to_string()
        } else {
            image.id().to_string()
        },
        repo_tags: super::familiar_tags(&record.names),
        repo_digests: store.repo_digests(record),
        parent: String::new(),
        // docker: the config's comment, else the last history entry's
        // (`buildkit.dockerfile.v0` for a BuildKit image).
        comment: Some(text("comment"))
            .filter(|c| !c.is_empty())
            .or_else(|| {
                raw.pointer("/history")
                    .and_then(Value::as_array)
                    .and_then(|h| h.last())
                    .and_then(|h| h.get("comment"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        created: text("created"),
        container: text("container"),
        container_config: DockerConfig(raw.get("container_config").cloned()),
        docker_version: text("docker_version"),
        author: text("author"),
        config: DockerConfig(raw.get("config").cloned()),
        architecture: text("architecture"),
        variant: raw
            .get("variant")
            .and_then(Value::as_str)
            .map(str::to_string),
        os: text("os"),
        size,
        virtual_size: size,
        // The snapshotter that unpacks images here (docker names its
        // graph driver); kiln has no per-image directories to list.
        graph_driver: json!({"Data": null, "Name": store_backend(store)}),
        root_fs: json!({
            "Type": "layers",
            "Layers": raw.pointer("/rootfs/diff_ids").cloned().unwrap_or(json!([])),
        }),
        history: raw.get("history").cloned().unwrap_or(json!([])),
        // An index's own descriptor (as docker 28 shows it), else the
        // manifest's; the fields above are the host platform's image.
        descriptor: if is_index {
            json!({
                "mediaType": record.entry.media_type,
                "digest": record.entry.digest.to_string(),
                "size": record.entry.size,
            })
        } else {
            json!({
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest.to_string(),
                "size": store.blobs().size(&image.manifest_digest)?,
            })
        },
        manifests: is_index
            .then(|| manifest_summaries(store, &record.entry))
            .transpose()?,
        // When the image was last named here (docker's LastTagTime).
        metadata: json!({"LastTagTime": record
            .entry
            .named_at()
            .map_or("0001-01-01T00:00:00Z".to_string(), kiln_core::rfc3339)}),
    })
}

/// docker's `ManifestSummary` of each manifest of an index: its ID and
/// descriptor (with the platform), whether the store holds it, and the
/// platform again under `ImageData`, as docker 28 writes them.
fn manifest_summaries(store: &Store, entry: &kiln_store::IndexEntry) -> anyhow::Result<Value> {
    let index = store.read_index_blob(&entry.digest)?;
    Ok(Value::Array(
        index
            .manifests
            .iter()
            .map(|m| {
                // BuildKit's attestation manifests (`--sbom`, `--provenance`
                // with several platforms): docker 28 names the image each is for.
                if let Some(about) = m.annotations.get("vnd.docker.reference.digest") {
                    return json!({
                        "ID": m.digest.to_string(),
                        "Descriptor": m,
                        "Available": store.blobs().exists(&m.digest),
                        "Kind": "attestation",
                        "AttestationData": {"For": about},
                    });
                }
                json!({
                    "ID": m.digest.to_string(),
                    "Descriptor": m,
                    "Available": store.blobs().exists(&m.digest),
                    "Kind": "image",
                    "ImageData": {"Platform": m.platform},
                })
            })
            .collect(),
    ))
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

/// docker's `json:",omitempty"` fields of `container.Config`.
const CONFIG_OMIT_EMPTY: &[&str] = &[
    "ExposedPorts",
    "Healthcheck",
    "ArgsEscaped",
    "NetworkDisabled",
    "MacAddress",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// docker's `HealthConfig` (every field `omitempty`); its times are
/// `time.Duration`s.
const HEALTH_FIELDS: [&str; 5] = ["Test", "Interval", "Timeout", "StartPeriod", "Retries"];

/// An image config's `config` written as docker's `container.Config`:
/// every field in docker's order, the `omitempty` ones only when set, the
/// others as their zero value (docker's struct has them all).
struct DockerConfig(Option<Value>);

impl DockerConfig {
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let empty = serde_json::Map::new();
        let raw = self.0.as_ref().and_then(Value::as_object).unwrap_or(&empty);
        CONFIG_FIELDS
            .iter()
            .map(|(k, zero)| (*k, raw.get(*k).cloned().unwrap_or_else(|| zero.clone())))
            .filter(|(k, v)| !(CONFIG_OMIT_EMPTY.contains(k) && json_empty(v)))
            .collect()
    }
}

impl Serialize for DockerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.fields();
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (k, v) in fields {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

/// `encoding/json`'s empty, for `omitempty`.
fn json_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A Config (as template data) as docker's typed struct: fields in
/// docker's order, `{{json .Config}}` as docker writes it, `{{.Config}}`
/// printed as Go prints a struct.
fn typed_config(config: kiln_template::Value) -> kiln_template::Value {
    use kiln_template::Value as T;
    let T::Object(mut m) = config else {
        return config;
    };
    let fields = CONFIG_FIELDS
        .iter()
        .map(|(k, _)| {
            let v = m.remove(*k).unwrap_or(T::Nil);
            let v = match (*k, v) {
                // map[string]struct{}: each value is an empty struct, `{}`.
                ("ExposedPorts" | "Volumes", T::Map(set) | T::Object(set)) => T::Map(
                    set.into_keys()
                        .map(|key| (key, T::typed("struct {}", Vec::new(), &[])))
                        .collect(),
                ),
                ("Healthcheck", T::Object(mut h)) => T::typed(
                    "container.HealthConfig",
                    HEALTH_FIELDS
                        .iter()
                        .map(|f| {
                            let v = match (h.remove(*f), *f) {
                                (Some(T::Int(n)), "Interval" | "Timeout" | "StartPeriod") => {
                                    T::Duration(n)
                                }
                                (Some(v), _) => v,
                                (None, "Interval" | "Timeout" | "StartPeriod") => T::Duration(0),
                                (None, "Retries") => T::Int(0),
                                (None, _) => T::Nil,
                            };
                            (f.to_string(), v)
                        })
                        .collect(),
                    &HEALTH_FIELDS,
                ),
                // strslice / []string left nil: Go prints `[]`, JSON null.
                ("Env" | "Cmd" | "Entrypoint" | "OnBuild" | "Shell", T::Nil) => T::NilList,
                (_, v) => v,
            };
            (k.to_string(), v)
        })
        .collect();
    T::typed("*container.Config", fields, CONFIG_OMIT_EMPTY)
}

/// docker's `RootFS` and `ImageMetadata` as typed structs (`{{.RootFS}}`
/// prints `{layers [...] }`, `{{.Metadata}}` the tag time as Go prints a
/// `time.Time`).
fn typed_image_parts(top: &mut std::collections::BTreeMap<String, kiln_template::Value>) {
    use kiln_template::Value as T;
    if let Some(T::Object(mut root)) = top.remove("RootFS") {
        let layers = root.remove("Layers").unwrap_or(T::NilList);
        top.insert(
            "RootFS".into(),
            T::typed(
                "types.RootFS",
                vec![
                    (
                        "Type".into(),
                        root.remove("Type").unwrap_or(T::Str(String::new())),
                    ),
                    ("Layers".into(), layers),
                    ("BaseLayer".into(), T::Str(String::new())),
                ],
                &["Layers", "BaseLayer"],
            ),
        );
    }
    if let Some(T::Object(mut meta)) = top.remove("Metadata") {
        let when = match meta.remove("LastTagTime") {
            Some(T::Str(t)) => t,
            _ => "0001-01-01T00:00:00Z".to_string(),
        };
        top.insert(
            "Metadata".into(),
            T::typed(
                "types.ImageMetadata",
                vec![("LastTagTime".into(), T::Time(when))],
                &[],
            ),
        );
    }
    if let Some(T::Object(mut g)) = top.remove("GraphDriver") {
        let data = match g.remove("Data") {
            Some(T::Object(m) | T::Map(m)) => T::Map(m),
            _ => T::Map(Default::default()),
        };
        let name = g.remove("Name").unwrap_or(T::Str(String::new()));
        top.insert(
            "GraphDriver".into(),
            T::typed(
                "types.GraphDriverData",
                vec![("Data".into(), data), ("Name".into(), name)],
                &[],
            ),
        );
    }
}

/// docker's `types.ImageInspect` field order (kiln's own fields after).
const IMAGE_FIELDS: [&str; 20] = [
    "Id",
    "RepoTags",
    "RepoDigests",
    "Parent",
    "Comment",
    "Created",
    "Container",
    "ContainerConfig",
    "DockerVersion",
    "Author",
    "Config",
    "Architecture",
    "Variant",
    "Os",
    "OsVersion",
    "Size",
    "VirtualSize",
    "GraphDriver",
    "RootFS",
    "Metadata",
];

/// An image's document as docker's typed struct: `{{json .}}` in docker's
/// order, `Variant` and `OsVersion` only when set.
fn typed_image(
    top: std::collections::BTreeMap<String, kiln_template::Value>,
) -> kiln_template::Value {
    let mut top = top;
    let mut fields: Vec<(String, kiln_template::Value)> = IMAGE_FIELDS
        .iter()
        .filter_map(|k| top.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    // What kiln shows beyond docker's struct (History, Descriptor).
    fields.extend(top);
    kiln_template::Value::typed("types.ImageInspect", fields, &["Variant", "OsVersion"])
}

/// The name of the snapshotter backend this store unpacks with.
fn store_backend(store: &Store) -> &'static str {
    kiln_snapshot::Backend::recorded(store.root())
        .unwrap_or(kiln_snapshot::Backend::Overlay)
        .name()
}

/// A document as template data, with docker's Config fields filled in.
fn template_view(mut v: Value) -> anyhow::Result<kiln_template::Value> {
    use kiln_template::Value as T;
    // Top-level fields docker's JSON omits when empty but its struct has.
    if let Some(top) = v.as_object_mut() {
        if top.contains_key("State") {
            // A container: docker's nil pointers and maps its JSON omits.
            if let Some(state) = top.get_mut("State").and_then(Value::as_object_mut) {
                state.entry("Health").or_insert(Value::Null);
            }
            if let Some(host) = top.get_mut("HostConfig").and_then(Value::as_object_mut) {
                host.entry("Init").or_insert(Value::Null);
                host.entry("Tmpfs").or_insert(Value::Null);
            }
        } else {
            for k in ["Variant", "OsVersion", "Container"] {
                top.entry(k).or_insert(Value::String(String::new()));
            }
        }
    }
    if let Some(config) = v.get_mut("Config").and_then(Value::as_object_mut) {
        for (k, zero) in CONFIG_FIELDS {
            config.entry(k).or_insert(zero);
        }
    }
    if let Some(config) = v.get_mut("ContainerConfig").and_then(Value::as_object_mut) {
        for (k, zero) in CONFIG_FIELDS {
            config.entry(k).or_insert(zero);
        }
    }
    let mut view = T::from_json(&v);
    if let T::Object(top) = &mut view {
        for which in ["Config", "ContainerConfig"] {
            if let Some(T::Object(mut config)) = top.remove(which) {
                for key in CONFIG_MAPS {
                    if let Some(m) = config.remove(key) {
                        config.insert(key.to_string(), m.into_go_map());
                    }
                }
                top.insert(which.to_string(), typed_config(T::Object(config)));
            }
        }
        if !top.contains_key("State") {
            typed_image_parts(top);
            let fields = std::mem::take(top);
            view = typed_image(fields);
        }
    }
    Ok(view)
}

/// `kiln container inspect`: containers only.
pub(crate) fn run_containers(store: &Store, mut args: Args) -> anyhow::Result<ExitCode> {
    args.kind = Some(Kind::Container);
    run(store, args)
}

/// A container's or an image's document, serialized as its own type (keys
/// in docker's order).
#[derive(Serialize)]
#[serde(untagged)]
enum Doc {
    Container(Box<kiln_container::inspect::ContainerInspect>),
    Image(Box<Inspect>),
}

/// The uncompressed size of container `c`'s image's layers (docker's
/// `SizeRootFs` less `SizeRw`), from the manifest the container holds.
fn image_layers_size(store: &Store, c: &kiln_container::Container) -> anyhow::Result<u64> {
    let digest: kiln_core::Digest = c.config.image_manifest.parse()?;
    let manifest = store.read_manifest(&digest)?;
    let mut total = 0;
    for layer in &manifest.layers {
        total += store.layer_size(&layer.digest)?;
    }
    Ok(total)
}

/// One name's document: a container first, then an image (docker's
/// order), each only when `--type` allows it.
fn find(
    store: &Store,
    engine: &kiln_container::Engine,
    input: &str,
    kind: Option<Kind>,
    size: bool,
) -> anyhow::Result<Doc> {
    if kind != Some(Kind::Image) {
        match engine.get(input) {
            Ok(c) => {
                let mut doc = engine.inspect(&c)?;
                if size {
                    let rw = engine.size_rw(&c)?;
                    doc.size_rw = Some(rw);
                    doc.size_root_fs = Some(rw + image_layers_size(store, &c)?);
                }
                return Ok(Doc::Container(Box::new(doc)));
            }
            Err(kiln_container::ContainerError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if kind == Some(Kind::Container) {
        anyhow::bail!("No such container: {input}");
    }
    match store.resolve(input) {
        Ok((record, image)) => Ok(Doc::Image(Box::new(inspect(store, &record, &image)?))),
        Err(kiln_store::StoreError::ImageNotFound(_)) if kind.is_none() => {
            anyhow::bail!("No such object: {input}")
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    // A bad template fails before anything is looked up, as in docker.
    let template = match args.format.as_deref() {
        None | Some("") | Some("json") => None,
        // docker's typed struct has `ID`, its JSON `Id`: both work.
        Some(t) => Some(kiln_template::Template::parse(t)?.alias("ID", "Id")),
    };
    let engine = super::container::engine(store)?;
    let mut docs = Vec::new();
    let mut failed = false;
    for input in &args.names {
        match find(store, &engine, input, args.kind, args.size) {
            Ok(doc) => docs.push(doc),
            Err(e) => {
                eprintln!("Error: {}", super::describe(&e));
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
            for d in docs {
                let view = template_view(serde_json::to_value(&d)?)?;
                println!("{}", template.execute(&view)?);
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

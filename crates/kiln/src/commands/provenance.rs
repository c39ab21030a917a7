//! `kiln build --provenance`: a SLSA provenance v0.2 predicate for the
//! built image — the base images (materials, by the digest the store
//! holds them at), the context's digest, the Dockerfile and build
//! arguments — kept beside the image in the store as an in-toto
//! statement: signed in a DSSE envelope with `--provenance-key` (then
//! `kiln verify-attestation --type slsaprovenance` checks it and `kiln
//! push` carries it when the digest survives the push), else unsigned,
//! as BuildKit records its provenance.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use kiln_core::image::Descriptor;
use kiln_core::{Digest, ImageRef};
use kiln_sign::dsse::{predicate_type, Statement};
use kiln_sign::layout::{self, Kind};
use kiln_sign::{ops, ReferrersMode, StoreTarget, Subject, Target};
use kiln_store::{IndexEntry, IndexEntryExt, Store};
use serde_json::json;

/// What the build was made from.
pub(crate) struct Inputs<'a> {
    pub dockerfile_text: &'a str,
    pub dockerfile_name: String,
    pub context_dir: &'a Path,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
}

/// Records the provenance of `entry` (named `name`).
pub(crate) fn record(
    store: &Store,
    entry: &IndexEntry,
    name: Option<&ImageRef>,
    inputs: &Inputs<'_>,
    key: Option<&Path>,
) -> anyhow::Result<String> {
    let (repository, uri, statement) = statement(store, entry, name, inputs)?;
    let subject = Subject {
        repository: repository.clone(),
        descriptor: Descriptor::new(&entry.media_type, entry.digest.clone(), entry.size),
        also: Vec::new(),
    };
    let target = StoreTarget { store };
    let stored = match key {
        Some(k) => {
            let key = super::keys::read_private_key(k)?;
            ops::attest(&target, &subject, &key, &statement, ReferrersMode::Legacy)?
        }
        None => {
            // BuildKit's form: the statement itself, unsigned.
            let bytes = serde_json::to_vec(&statement)?;
            let mut layer = Descriptor::of("application/vnd.in-toto+json", &bytes);
            layer
                .annotations
                .insert("in-toto.io/predicate-type".into(), uri.clone());
            let built = layout::referrer_manifest(&entry.clone(), Kind::Attestation, layer, bytes);
            for (_, b) in &built.blobs {
                target.put_blob(b)?;
            }
            target.put_manifest(&built.manifest, None)?;
            ops::Stored {
                location: format!("{} (unsigned)", built.manifest.digest),
                fell_back: false,
            }
        }
    };
    Ok(stored.location)
}

/// The provenance statement about `entry` (named `name`): the name it
/// is made for, the predicate type, the statement. Kept beside the image
/// for one platform ([`record`]), put into the index for several
/// (`kiln_build::attestation`).
pub(crate) fn statement(
    store: &Store,
    entry: &IndexEntry,
    name: Option<&ImageRef>,
    inputs: &Inputs<'_>,
) -> anyhow::Result<(ImageRef, String, Statement)> {
    let predicate = predicate(store, inputs)?;
    let repository = match name {
        Some(n) => n.clone(),
        None => "localhost/unnamed".parse()?,
    };
    let uri = predicate_type("slsaprovenance")?;
    let now = kiln_core::rfc3339(std::time::SystemTime::now());
    let statement = Statement::new(
        &repository,
        &entry.digest,
        &uri,
        &serde_json::to_vec(&predicate)?,
        &now,
    )?;
    Ok((repository, uri, statement))
}

fn predicate(store: &Store, inputs: &Inputs<'_>) -> anyhow::Result<serde_json::Value> {
    let df = kiln_dockerfile::parse(inputs.dockerfile_text)?;
    let mut stage_names: Vec<String> = Vec::new();
    let mut materials = Vec::new();
    for stage in &df.stages {
        let base = stage.base.to_ascii_lowercase();
        let is_stage = stage_names.contains(&base);
        if let Some(n) = &stage.name {
            stage_names.push(n.clone());
        }
        if is_stage || base == "scratch" || stage.base.contains('$') {
            continue;
        }
        let Ok((record, _)) = store.resolve(&stage.base) else {
            continue;
        };
        let digest = record.entry.repo_digest();
        let uri = match stage.base.parse::<ImageRef>() {
            Ok(r) => format!("pkg:docker/{}", r.familiar()),
            Err(_) => stage.base.clone(),
        };
        let m = json!({"uri": uri, "digest": {digest.algorithm().as_str(): digest.hex()}});
        if !materials.contains(&m) {
            materials.push(m);
        }
    }
    let context = context_digest(inputs.context_dir)?;
    let mut parameters = json!({"frontend": "dockerfile.v0", "args": inputs.build_args});
    if let Some(t) = inputs.target {
        parameters["target"] = json!(t);
    }
    Ok(json!({
        "builder": {"id": format!("https://kiln.dev/kiln@v{}", env!("CARGO_PKG_VERSION"))},
        "buildType": "https://kiln.dev/build/dockerfile@v1",
        "invocation": {
            "configSource": {
                "uri": format!("file://{}", inputs.context_dir.display()),
                "digest": {"sha256": context.hex()},
                "entryPoint": inputs.dockerfile_name,
            },
            "parameters": parameters,
        },
        "metadata": {
            "buildFinishedOn": kiln_core::rfc3339(std::time::SystemTime::now()),
            "completeness": {"parameters": true, "environment": false, "materials": true},
            "reproducible": false,
        },
        "materials": materials,
    }))
}

/// The context's digest: SHA-256 over every entry's relative path, kind
/// and content digest (or link target), in path order, so the same tree
/// gives the same digest wherever it lies.
fn context_digest(dir: &Path) -> anyhow::Result<Digest> {
    use sha2::{Digest as _, Sha256};
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let e = e?;
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type()?;
            let line = if ft.is_dir() {
                stack.push(path.clone());
                format!("{rel}\0dir\0")
            } else if ft.is_symlink() {
                format!("{rel}\0link\0{}", std::fs::read_link(&path)?.display())
            } else if ft.is_file() {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                format!("{rel}\0file\0{}", hex_of(&Sha256::digest(&bytes)))
            } else {
                format!("{rel}\0other\0")
            };
            entries.push(line);
        }
    }
    entries.sort();
    let mut h = Sha256::new();
    for l in &entries {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    Ok(Digest::from_parts(
        kiln_core::Algorithm::Sha256,
        &hex_of(&h.finalize()),
    )?)
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

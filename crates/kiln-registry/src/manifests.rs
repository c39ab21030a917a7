//! Manifests (GET/HEAD/PUT/DELETE by tag or digest) and the referrers API.
//!
//! A manifest is accepted only when it is a JSON document of a known media
//! type, within [`crate::MAX_MANIFEST`], with the digest its URL names (when
//! it names one), and when every blob and manifest it names is held by the
//! repository (`MANIFEST_BLOB_UNKNOWN` otherwise); its `subject` need not
//! exist (the spec allows referrers to arrive first).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use futures_util::StreamExt;
use kiln_core::{Algorithm, Digest};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::hash::digest_of;
use crate::names::{valid_tag, Reference};
use crate::storage::ManifestInfo;
use crate::{not_modified, parse_digest, query, query_value, respond, App, MAX_MANIFEST};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub(crate) async fn handle(
    app: &App,
    name: &str,
    reference: &str,
    method: Method,
    req: Request,
) -> ApiResult {
    let reference = Reference::parse(reference).ok_or_else(|| match reference.contains(':') {
        true => ApiError::digest_invalid(format!("invalid digest {reference:?}")),
        false => ApiError::tag_invalid(reference),
    })?;
    match method {
        Method::GET | Method::HEAD => get(app, name, &reference, method == Method::HEAD, &req),
        Method::PUT => put(app, name, &reference, req).await,
        Method::DELETE => delete(app, name, &reference),
        _ => Err(ApiError::unsupported(
            "manifests take GET, HEAD, PUT and DELETE",
        )),
    }
}

fn resolve(app: &App, name: &str, reference: &Reference) -> ApiResult<Digest> {
    if !app.storage.repo_exists(name)? {
        return Err(ApiError::name_unknown(name));
    }
    match reference {
        Reference::Digest(d) => Ok(d.clone()),
        Reference::Tag(t) => app
            .storage
            .resolve_tag(name, t)?
            .ok_or_else(|| ApiError::manifest_unknown(t)),
    }
}

fn get(app: &App, name: &str, reference: &Reference, head: bool, req: &Request) -> ApiResult {
    let digest = resolve(app, name, reference)?;
    let (media_type, bytes) = app
        .storage
        .manifest(name, &digest)?
        .ok_or_else(|| ApiError::manifest_unknown(&digest.to_string()))?;
    let etag = format!("\"{digest}\"");
    let mut headers = vec![
        ("docker-content-digest", digest.to_string()),
        ("etag", etag.clone()),
    ];
    if not_modified(req, &etag) {
        return Ok(respond(StatusCode::NOT_MODIFIED, &headers, Body::empty()));
    }
    headers.push(("content-type", media_type));
    headers.push(("content-length", bytes.len().to_string()));
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    Ok(respond(StatusCode::OK, &headers, body))
}

/// The body, refused past `max` bytes.
async fn read_capped(body: Body, max: usize) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::manifest_invalid(format!("reading the body: {e}")))?;
        if out.len() + chunk.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("manifest larger than {max} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn descriptor_digest(d: &Value) -> ApiResult<Digest> {
    d.get("digest")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::manifest_invalid("a descriptor has no valid digest"))
}

/// Checks the document and that `name` holds what it names.
fn check(app: &App, name: &str, doc: &Value, media_type: &str) -> ApiResult<()> {
    if doc.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
    }
    let list = |key: &str| -> ApiResult<Vec<Value>> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(ApiError::manifest_invalid(format!("{key} must be a list"))),
        }
    };
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        for m in list("manifests")? {
            let d = descriptor_digest(&m)?;
            // The refresh keeps GC from removing it under us (gc.rs).
            if !app.storage.touch_manifest(name, &d)? || app.storage.manifest(name, &d)?.is_none() {
                return Err(ApiError::manifest_blob_unknown(d));
            }
        }
        return Ok(());
    }
    let config = doc
        .get("config")
        .ok_or_else(|| ApiError::manifest_invalid("an image manifest needs a config"))?;
    let mut blobs = vec![config.clone()];
    blobs.extend(list("layers")?);
    for b in blobs {
        let d = descriptor_digest(&b)?;
        // Non-distributable layers live elsewhere (their `urls`).
        let foreign = b
            .get("urls")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty())
            || b.get("mediaType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("nondistributable") || t.contains(".foreign."));
        // The refresh keeps GC from removing it under us (gc.rs).
        let held = foreign || (app.storage.has_link(name, &d)? && app.storage.touch_blob(&d)?);
        if !held {
            return Err(ApiError::manifest_blob_unknown(d));
        }
    }
    Ok(())
}

/// What the storage records of a manifest beside its bytes (`doc`, with
/// `digest`, `media_type` and `size`): its subject, artifact type and
/// annotations.
pub(crate) fn info(
    digest: Digest,
    media_type: String,
    doc: &Value,
    size: usize,
) -> ApiResult<ManifestInfo> {
    let subject = match doc.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor_digest(s)?),
    };
    let artifact_type = doc
        .get("artifactType")
        .or_else(|| doc.get("config").and_then(|c| c.get("mediaType")))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ManifestInfo {
        digest,
        media_type,
        size: size as u64,
        subject,
        artifact_type,
        annotations: doc.get("annotations").filter(|a| a.is_object()).cloned(),
    })
}

/// Stores the manifest and points `tags` at it, unless the repository's
/// tags are immutable and one of them names another manifest.
fn store(
    app: &App,
    name: &str,
    info: &ManifestInfo,
    bytes: &[u8],
    tags: &[String],
) -> ApiResult<()> {
    let immutable = app.options.tags_immutable(name);
    let _guard = immutable.then(|| app.tag_lock.lock().unwrap_or_else(|e| e.into_inner()));
    if immutable {
        for t in tags {
            match app.storage.resolve_tag(name, t)? {
                Some(old) if old != info.digest => {
                    return Err(ApiError::denied(format!(
                        "tag {t} of {name} is immutable: it names {old}; push under a new tag"
                    )))
                }
                _ => {}
            }
        }
    }
    app.storage.put_manifest(name, info, bytes)?;
    for t in tags {
        app.storage.tag(name, t, &info.digest)?;
    }
    Ok(())
}

async fn put(app: &App, name: &str, reference: &Reference, req: Request) -> ApiResult {
    let mut tags: Vec<String> = query(&req)
        .into_iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v)
        .collect();
    if let Reference::Tag(t) = reference {
        tags.push(t.clone());
    }
    if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
        return Err(ApiError::tag_invalid(bad));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    let bytes = read_capped(req.into_body(), MAX_MANIFEST).await?;
    let digest = match reference {
        Reference::Digest(expected) => {
            let actual = digest_of(expected.algorithm(), &bytes);
            if &actual != expected {
                return Err(ApiError::digest_invalid(format!(
                    "the manifest has digest {actual}, not {expected}"
                )));
            }
            actual
        }
        Reference::Tag(_) => digest_of(Algorithm::Sha256, &bytes),
    };
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("not JSON: {e}")))?;
    if !doc.is_object() {
        return Err(ApiError::manifest_invalid("not a JSON object"));
    }
    let in_body = doc.get("mediaType").and_then(Value::as_str);
    let media_type = match (in_body, declared.as_deref()) {
        (Some(b), Some(d)) if b != d => {
            return Err(ApiError::manifest_invalid(format!(
                "mediaType {b} but Content-Type {d}"
            )))
        }
        (Some(t), _) | (None, Some(t)) => t.to_string(),
        (None, None) if doc.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    if ![OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&media_type.as_str()) {
        return Err(ApiError::manifest_invalid(format!(
            "unsupported manifest media type {media_type}"
        )));
    }
    check(app, name, &doc, &media_type)?;
    let info = info(digest.clone(), media_type, &doc, bytes.len())?;
    let subject = info.subject.clone();
    store(app, name, &info, &bytes, &tags)?;
    let mut headers = vec![
        ("location", format!("/v2/{name}/manifests/{digest}")),
        ("docker-content-digest", digest.to_string()),
        ("content-length", "0".to_string()),
    ];
    if let Some(s) = subject {
        headers.push(("oci-subject", s.to_string()));
    }
    for t in tags {
        headers.push(("oci-tag", t));
    }
    Ok(respond(StatusCode::CREATED, &headers, Body::empty()))
}

fn delete(app: &App, name: &str, reference: &Reference) -> ApiResult {
    let accepted = || {
        respond(
            StatusCode::ACCEPTED,
            &[("content-length", "0".into())],
            Body::empty(),
        )
    };
    let immutable = app.options.tags_immutable(name);
    let _guard = immutable.then(|| app.tag_lock.lock().unwrap_or_else(|e| e.into_inner()));
    if immutable {
        let tagged = match reference {
            Reference::Tag(t) => app.storage.resolve_tag(name, t)?.is_some(),
            Reference::Digest(d) => {
                let mut tagged = false;
                for t in app.storage.tags(name)?.unwrap_or_default() {
                    tagged |= app.storage.resolve_tag(name, &t)?.as_ref() == Some(d);
                }
                tagged
            }
        };
        if tagged {
            return Err(ApiError::denied(format!(
                "the tags of {name} are immutable: {} stays",
                match reference {
                    Reference::Tag(t) => t.clone(),
                    Reference::Digest(d) => d.to_string(),
                }
            )));
        }
    }
    match reference {
        Reference::Tag(t) => match app.storage.untag(name, t)? {
            true => Ok(accepted()),
            false => Err(ApiError::manifest_unknown(t)),
        },
        Reference::Digest(d) => {
            let Some((_, bytes)) = app.storage.manifest(name, d)? else {
                return Err(ApiError::manifest_unknown(&d.to_string()));
            };
            let subject = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|doc| doc.get("subject").map(descriptor_digest))
                .and_then(Result::ok);
            app.storage.delete_manifest(name, d, subject.as_ref())?;
            Ok(accepted())
        }
    }
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an index, empty
/// when nothing refers to the digest.
pub(crate) fn referrers(app: &App, name: &str, digest: &str, req: &Request) -> ApiResult {
    let subject = parse_digest(digest)?;
    let q = query(req);
    let filter = query_value(&q, "artifactType");
    let mut manifests = app.storage.referrers(name, &subject)?;
    if let Some(t) = filter {
        manifests.retain(|d| d.get("artifactType").and_then(Value::as_str) == Some(t));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    let mut headers = vec![
        ("content-type", OCI_INDEX.to_string()),
        ("content-length", body.len().to_string()),
    ];
    if filter.is_some() {
        headers.push(("oci-filters-applied", "artifactType".into()));
    }
    Ok(respond(StatusCode::OK, &headers, Body::from(body)))
}

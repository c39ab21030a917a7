#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Read;

use super::*;
use crate::content::{ContentError, Provider};
use crate::ErrorKind;

fn d(media_type: &str, n: u8) -> Descriptor {
    let hex = format!("{n:02x}").repeat(32);
    Descriptor::new(
        media_type,
        format!("sha256:{hex}").parse().unwrap(),
        n as u64,
    )
}

#[test]
fn manifest_bytes_are_the_ones_kiln_always_wrote() {
    // The exact form the store wrote before the model existed: image
    // digests in tests and in users' stores depend on it.
    let m = Manifest::oci(d(mt::OCI_CONFIG, 1), vec![d(mt::OCI_LAYER_GZIP, 2)]);
    let want = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"sha256:{}","size":1}},"layers":[{{"mediaType":"{}","digest":"sha256:{}","size":2}}]}}"#,
        mt::OCI_MANIFEST,
        mt::OCI_CONFIG,
        "01".repeat(32),
        mt::OCI_LAYER_GZIP,
        "02".repeat(32)
    );
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), want);
}

#[test]
fn manifests_keep_subject_artifact_type_and_annotations() {
    let text = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/x.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:{}","size":2,"data":"e30="}},"layers":[],"subject":{{"mediaType":"{}","digest":"sha256:{}","size":3}},"annotations":{{"a":"b"}}}}"#,
        mt::OCI_MANIFEST,
        "44".repeat(32),
        mt::OCI_MANIFEST,
        "03".repeat(32)
    );
    let m: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(m.subject.as_ref().unwrap().size, 3);
    assert_eq!(m.artifact_type.as_deref(), Some("application/x.sig"));
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), text);
}

#[test]
fn config_round_trips_nulls_unknown_fields_and_misfits() {
    // docker's nulls, a field kiln does not model, a known field of the
    // wrong type: all written back as they were, keys sorted.
    let text = r#"{"architecture":"amd64","config":{"Cmd":null,"Env":["A=1"],"Hostname":"","Labels":"odd","OnBuild":null},"container":"abc","os":"linux","rootfs":{"diff_ids":["sha256:0101010101010101010101010101010101010101010101010101010101010101"],"type":"layers"},"weird":1.5}"#;
    let c = ImageConfig::from_slice(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(c.to_bytes()).unwrap(), text);
    assert_eq!(c.container().env(), ["A=1".to_string()]);
    assert_eq!(c.diff_ids().len(), 1);

    // Setting a field that was null writes the value; forgetting one that
    // is unset drops the null.
    let mut c = c;
    let cfg = c.container_mut();
    cfg.cmd = None;
    cfg.forget("Cmd");
    cfg.labels = Some([("k".to_string(), "v".to_string())].into());
    cfg.on_build = Some(vec!["RUN x".into()]);
    let v: serde_json::Value = serde_json::from_slice(&c.to_bytes()).unwrap();
    assert!(v["config"].get("Cmd").is_none());
    assert_eq!(v["config"]["Labels"]["k"], "v");
    assert_eq!(v["config"]["OnBuild"][0], "RUN x");
}

#[test]
fn config_rejects_what_is_not_an_object() {
    assert!(ImageConfig::from_slice(b"[1]").is_err());
    assert!(ImageConfig::from_slice(b"{").is_err());
}

#[test]
fn chain_ids_follow_the_spec() {
    let a = DiffId(d("", 1).digest);
    let b = DiffId(d("", 2).digest);
    let chain = ChainId::chain(&[a.clone(), b.clone()]);
    assert_eq!(chain[0].0, a.0);
    assert_eq!(
        chain[1].0,
        crate::Digest::sha256(format!("{a} {b}").as_bytes())
    );
}

#[test]
fn one_platform_matcher() {
    let mut idx = Index::oci(vec![]);
    for (arch, variant, n) in [
        ("amd64", None, 1),
        ("arm", Some("v6"), 2),
        ("arm", Some("v7"), 3),
        ("arm64", None, 4),
    ] {
        let mut e = d(mt::OCI_MANIFEST, n);
        e.platform = Some(Platform::new("linux", arch, variant));
        idx.manifests.push(e);
    }
    let pick = |p: &str| idx.select(&p.parse().unwrap()).map(|d| d.size);
    assert_eq!(pick("linux/amd64"), Some(1));
    assert_eq!(pick("linux/arm/v7"), Some(3));
    assert_eq!(pick("linux/arm/v6"), Some(2));
    assert_eq!(pick("linux/arm"), Some(2));
    assert_eq!(pick("linux/arm64/v8"), Some(4));
    assert_eq!(pick("linux/s390x"), None);
    assert_eq!(
        idx.platforms().join(", "),
        "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64"
    );
    // The wire form of a platform is OCI's.
    let p: Platform = serde_json::from_str(
        r#"{"architecture":"arm64","os":"linux","os.features":["x"],"variant":"v8"}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"architecture":"arm64","os":"linux","os.features":["x"],"variant":"v8"}"#
    );
}

#[test]
fn raw_manifests_are_classified() {
    let m = RawManifest::new(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), None, "x").unwrap();
    assert!(m.is_index());
    let m = RawManifest::new(
        br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}}"#.to_vec(),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
        "x",
    )
    .unwrap();
    assert_eq!(m.media_type, mt::DOCKER_MANIFEST);
    let err = m.image("x").unwrap_err().to_string();
    assert!(err.contains("media type \"a\""), "{err}");
    assert!(m.manifest("x").is_ok());
    assert!(RawManifest::new(br#"{"schemaVersion":1}"#.to_vec(), None, "x").is_err());
    let err = RawManifest::new(br#"{"mediaType":"text/html"}"#.to_vec(), None, "x").unwrap_err();
    assert!(err.to_string().contains("text/html"), "{err}");
    assert!(RawManifest::new(b"<html>".to_vec(), None, "x").is_err());
}

/// Blobs in memory: the smallest provider.
#[derive(Default)]
struct Mem(HashMap<crate::Digest, Vec<u8>>);

impl Mem {
    fn put(&mut self, media_type: &str, bytes: Vec<u8>) -> Descriptor {
        let desc = Descriptor::of(media_type, &bytes);
        self.0.insert(desc.digest.clone(), bytes);
        desc
    }
}

impl Provider for Mem {
    fn info(&self, digest: &crate::Digest) -> Result<Option<u64>, ContentError> {
        Ok(self.0.get(digest).map(|b| b.len() as u64))
    }
    fn open(&self, digest: &crate::Digest) -> Result<Box<dyn Read + Send + '_>, ContentError> {
        match self.0.get(digest) {
            Some(b) => Ok(Box::new(&b[..])),
            None => Err(ContentError::NotFound(digest.clone())),
        }
    }
}

#[test]
fn walk_visits_each_blob_once_and_can_skip_platforms() {
    let mut mem = Mem::default();
    let config = mem.put(mt::OCI_CONFIG, b"{}".to_vec());
    let layer = mem.put(mt::OCI_LAYER_GZIP, b"layer".to_vec());
    let m1 = Manifest::oci(config.clone(), vec![layer.clone()]);
    let mut d1 = mem.put(mt::OCI_MANIFEST, m1.to_bytes());
    d1.platform = Some(Platform::new("linux", "amd64", None));
    // A second platform sharing the config and layer, plus its own layer.
    let layer2 = mem.put(mt::OCI_LAYER_GZIP, b"layer2".to_vec());
    let m2 = Manifest::oci(config.clone(), vec![layer.clone(), layer2.clone()]);
    let mut d2 = mem.put(mt::OCI_MANIFEST, m2.to_bytes());
    d2.platform = Some(Platform::new("linux", "arm64", None));
    let idx = mem.put(
        mt::OCI_INDEX,
        Index::oci(vec![d1.clone(), d2.clone()]).to_bytes(),
    );

    let all = reachable(&mem, &idx).unwrap();
    let digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
    assert_eq!(
        digests,
        [&idx, &d1, &config, &layer, &d2, &layer2].map(|d| d.digest.clone())
    );

    let mut seen = Vec::new();
    let want: Platform = "linux/arm64".parse().unwrap();
    walk::<_, ContentError>(
        &mem,
        &idx,
        &mut |n| {
            seen.push(n.kind);
            Ok(match (&n.kind, &n.descriptor.platform) {
                (NodeKind::Manifest, Some(p)) if !want.matches(p) => Visit::Skip,
                _ => Visit::Descend,
            })
        },
        &mut |_, e| Err(e),
    )
    .unwrap();
    use NodeKind as K;
    assert_eq!(
        seen,
        [
            K::Index,
            K::Manifest,
            K::Manifest,
            K::Config,
            K::Layer,
            K::Layer
        ]
    );

    // A missing or corrupt manifest goes to `unreadable`.
    let mut mem2 = Mem::default();
    mem2.0.insert(d1.digest.clone(), b"{}".to_vec());
    let err = reachable(&mem2, &d1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    let mut problems = 0;
    walk::<_, ContentError>(
        &Mem::default(),
        &idx,
        &mut |_| Ok(Visit::Descend),
        &mut |_, _| {
            problems += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(problems, 1);
}

/// Polls to completion, without an executor (the futures here wake no one:
/// they are polled again at once).
fn poll_until_done<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A read that is pending once before its bytes arrive, as a network read.
async fn later(bytes: Option<Vec<u8>>, digest: crate::Digest) -> Result<Vec<u8>, ContentError> {
    let mut once = false;
    std::future::poll_fn(|_| {
        if once {
            std::task::Poll::Ready(())
        } else {
            once = true;
            std::task::Poll::Pending
        }
    })
    .await;
    bytes.ok_or(ContentError::NotFound(digest))
}

#[test]
fn walk_with_reads_asynchronously_and_verifies_what_it_is_given() {
    let mut mem = Mem::default();
    let config = mem.put(mt::OCI_CONFIG, b"{}".to_vec());
    let layer = mem.put(mt::OCI_LAYER_GZIP, b"layer".to_vec());
    let m = mem.put(
        mt::OCI_MANIFEST,
        Manifest::oci(config.clone(), vec![layer.clone()]).to_bytes(),
    );
    let idx = mem.put(mt::OCI_INDEX, Index::oci(vec![m.clone()]).to_bytes());

    let mut fetched = Vec::new();
    let mut seen = Vec::new();
    poll_until_done(walk_with::<ContentError, _, _, _, _>(
        &idx,
        |d: &Descriptor| {
            fetched.push(d.digest.clone());
            later(mem.0.get(&d.digest).cloned(), d.digest.clone())
        },
        |n: &Node<'_>| {
            seen.push(n.descriptor.digest.clone());
            Ok(Visit::Descend)
        },
        |_: &Node<'_>, e| Err(e),
    ))
    .unwrap();
    // Only documents are fetched; blobs are named.
    assert_eq!(fetched, [idx.digest.clone(), m.digest.clone()]);
    assert_eq!(seen, [&idx, &m, &config, &layer].map(|d| d.digest.clone()));

    // A source that hands back other bytes than the digest names (a
    // registry serving something else) is caught by the walk itself.
    let mut problems = Vec::new();
    poll_until_done(walk_with::<ContentError, _, _, _, _>(
        &idx,
        |d: &Descriptor| {
            let mut bytes = mem.0.get(&d.digest).cloned();
            if d.digest == m.digest {
                bytes = mem.0.get(&idx.digest).cloned();
            }
            later(bytes, d.digest.clone())
        },
        |_: &Node<'_>| Ok(Visit::Descend),
        |n: &Node<'_>, e: ContentError| {
            problems.push((n.descriptor.digest.clone(), e.kind()));
            Ok(())
        },
    ))
    .unwrap();
    assert_eq!(problems, [(m.digest.clone(), ErrorKind::Integrity)]);
}

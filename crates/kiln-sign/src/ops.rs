//! Signing and verifying an image's signatures and attestations on a
//! [`Target`]: the payloads of `payload`/`dsse`, stored as `layout` says.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_core::image::{Descriptor, Manifest, RawManifest};
use kiln_core::{Digest, ImageRef};

use crate::dsse::{Envelope, Statement};
use crate::error::{Result, SignError};
use crate::keys::{PrivateKey, PublicKey};
use crate::layout::{self, Kind, PREDICATE_TYPE_ANNOTATION, SIGNATURE_ANNOTATION};
use crate::payload::SimpleSigning;
use crate::target::Target;

/// The image a signature is about.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The repository it is signed for (`docker-reference`).
    pub repository: ImageRef,
    /// Its manifest (or index) descriptor: the digest signed.
    pub descriptor: Descriptor,
    /// Other digests that name the same image and whose signatures count:
    /// for an image pulled from an index, the index digest (what a
    /// registry user signs).
    pub also: Vec<Digest>,
}

impl Subject {
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }

    fn digests(&self) -> Vec<&Digest> {
        std::iter::once(&self.descriptor.digest)
            .chain(self.also.iter())
            .collect()
    }
}

/// How signatures go to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferrersMode {
    /// cosign's tag scheme (`sha256-<hex>.sig`).
    #[default]
    Legacy,
    /// An OCI 1.1 referrer; the tag scheme when the registry lacks the API.
    Oci11,
}

/// Where a signature was written.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `repo:sha256-….sig`, `repo@sha256:… (referrer)`, or the store's.
    pub location: String,
    /// Set when `oci-1-1` fell back to the tag scheme.
    pub fell_back: bool,
}

/// Signs `subject` with `key` and stores the signature on `target`.
pub fn sign(
    target: &dyn Target,
    subject: &Subject,
    key: &PrivateKey,
    annotations: BTreeMap<String, String>,
    mode: ReferrersMode,
) -> Result<Stored> {
    let payload = SimpleSigning::new(&subject.repository, subject.digest(), annotations).to_bytes();
    let signature = key.sign(&payload);
    let mut layer = Descriptor::of(layout::SIMPLESIGNING, &payload);
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), B64.encode(signature));
    let public = key.public();
    let dupe = Dupe::Cosign(&public);
    store_layer(target, subject, Kind::Signature, layer, payload, mode, dupe)
}

/// Attests `statement` about `subject` with `key` (a DSSE envelope).
pub fn attest(
    target: &dyn Target,
    subject: &Subject,
    key: &PrivateKey,
    statement: &Statement,
    mode: ReferrersMode,
) -> Result<Stored> {
    let envelope = Envelope::sign(statement, key)?;
    let bytes = serde_json::to_vec(&envelope).map_err(|e| SignError::invalid("envelope", e))?;
    let mut layer = Descriptor::of(layout::DSSE, &bytes);
    // cosign's layer annotations: an empty signature (the envelope holds
    // it) and the predicate type.
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), String::new());
    layer.annotations.insert(
        PREDICATE_TYPE_ANNOTATION.into(),
        statement.predicate_type.clone(),
    );
    let public = key.public();
    let dupe = Dupe::Cosign(&public);
    store_layer(target, subject, Kind::Attestation, layer, bytes, mode, dupe)
}

/// How [`store_layer`] tells that a layer is already stored.
#[derive(Clone, Copy)]
pub enum Dupe<'a> {
    /// cosign's `DupeDetector` with the signer's key ([`layout::cosign_dupe`]).
    Cosign(&'a PublicKey),
    /// The very same layer (digest and annotations): copying a stored
    /// layer elsewhere.
    Identical,
}

/// Writes one signature/attestation layer the way `mode` and the target
/// allow.
pub fn store_layer(
    target: &dyn Target,
    subject: &Subject,
    kind: Kind,
    layer: Descriptor,
    bytes: Vec<u8>,
    mode: ReferrersMode,
    dupe: Dupe<'_>,
) -> Result<Stored> {
    let as_referrer = !target.supports_tags() || mode == ReferrersMode::Oci11;
    let fell_back = false;
    if as_referrer {
        let has_api = target.referrers(subject.digest())?.is_some() || !target.supports_tags();
        let built = layout::referrer_manifest(&subject.descriptor, kind, layer, bytes);
        write(target, &built, None)?;
        let mut location = format!(
            "{}@{} (referrer of {})",
            target.describe(),
            built.manifest.digest,
            subject.digest()
        );
        if !has_api {
            // The distribution spec's referrers tag schema: an index under
            // `sha256-<hex>` lists the subject's referrers where the
            // registry cannot (cosign does the same, through
            // go-containerregistry).
            let tag = fallback_tag(subject.digest());
            add_to_fallback_index(target, &tag, &built.manifest, kind)?;
            location = format!("{location}, listed in {}:{tag}", target.describe());
        }
        return Ok(Stored {
            location,
            fell_back: !has_api,
        });
    }
    let tag = layout::tag(subject.digest(), kind);
    let existing = match target.manifest(&tag)? {
        Some(raw) => Some(
            raw.manifest(&tag)
                .map_err(|e| SignError::invalid(format!("existing {tag}"), e))?,
        ),
        None => None,
    };
    let is_dupe = |e: &Descriptor| match dupe {
        Dupe::Cosign(key) => layout::cosign_dupe(e, &layer, &|sig| key.verify(&bytes, sig)),
        Dupe::Identical => e.digest == layer.digest && e.annotations == layer.annotations,
    };
    let built = layout::tag_manifest(existing.as_ref(), layer.clone(), bytes.clone(), &is_dupe);
    write(target, &built, Some(&tag))?;
    Ok(Stored {
        location: format!("{}:{tag}", target.describe()),
        fell_back,
    })
}

/// The referrers tag schema's tag for `subject`: `<alg>-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    subject.to_string().replacen(':', "-", 1)
}

/// Adds `manifest` to the fallback index under `tag` (made when absent).
fn add_to_fallback_index(
    target: &dyn Target,
    tag: &str,
    manifest: &RawManifest,
    kind: Kind,
) -> Result<()> {
    let mut index = match target.manifest(tag)? {
        Some(raw) if raw.is_index() => raw
            .index(tag)
            .map_err(|e| SignError::invalid(tag.to_string(), e))?,
        _ => kiln_core::image::Index::oci(Vec::new()),
    };
    if index.manifests.iter().any(|m| m.digest == manifest.digest) {
        return Ok(());
    }
    let mut d = manifest.descriptor();
    d.artifact_type = Some(kind.artifact_type().to_string());
    index.manifests.push(d);
    let bytes = index.to_bytes();
    let raw = RawManifest::new(bytes, Some(kiln_core::media_types::OCI_INDEX), tag)
        .map_err(|e| SignError::invalid(tag.to_string(), e))?;
    target.put_manifest(&raw, Some(tag))
}

/// The subject's referrers: the registry's API, else the fallback tag's
/// index.
fn referrers_of(target: &dyn Target, digest: &Digest) -> Result<Vec<Descriptor>> {
    if let Some(list) = target.referrers(digest)? {
        return Ok(list);
    }
    let tag = fallback_tag(digest);
    Ok(match target.manifest(&tag)? {
        Some(raw) if raw.is_index() => {
            raw.index(&tag)
                .map_err(|e| SignError::invalid(tag.clone(), e))?
                .manifests
        }
        _ => Vec::new(),
    })
}

fn write(target: &dyn Target, built: &layout::Built, tag: Option<&str>) -> Result<()> {
    for (_, bytes) in &built.blobs {
        target.put_blob(bytes)?;
    }
    target.put_manifest(&built.manifest, tag)
}

/// Every stored layer of `kind` about the subject's digests: from the
/// cosign tags and from referrers.
pub fn find_layers(target: &dyn Target, subject: &Subject, kind: Kind) -> Result<Vec<Descriptor>> {
    let mut out: Vec<Descriptor> = Vec::new();
    let mut add = |m: &Manifest| {
        for l in layout::layers_of(m, kind) {
            if !out
                .iter()
                .any(|o| o.digest == l.digest && o.annotations == l.annotations)
            {
                out.push(l);
            }
        }
    };
    for digest in subject.digests() {
        if target.supports_tags() {
            let tag = layout::tag(digest, kind);
            if let Some(raw) = target.manifest(&tag)? {
                add(&raw
                    .manifest(&tag)
                    .map_err(|e| SignError::invalid(tag.clone(), e))?);
            }
        }
        let referrers = if target.supports_tags() {
            referrers_of(target, digest)?
        } else {
            target.referrers(digest)?.unwrap_or_default()
        };
        for r in referrers {
            if !r
                .artifact_type
                .as_deref()
                .is_some_and(|t| kind.accepts_artifact_type(t))
            {
                continue;
            }
            if let Some(raw) = target.manifest(&r.digest.to_string())? {
                let m = raw
                    .manifest(&r.digest.to_string())
                    .map_err(|e| SignError::invalid(r.digest.to_string(), e))?;
                add(&m);
            }
        }
    }
    Ok(out)
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The payload exactly as signed.
    pub payload: Vec<u8>,
    pub claims: SimpleSigning,
}

/// Checks the subject's signatures against `key`: signature, payload
/// digest and that each of `annotations` is in the
/// payload. The ones that pass; an error saying why when none does.
pub fn verify(
    target: &dyn Target,
    subject: &Subject,
    key: &PublicKey,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<Verified>> {
    check_each(
        target,
        subject,
        Kind::Signature,
        ("signatures", "sign it with kiln sign --key KEY"),
        |l| check_signature(target, subject, key, annotations, l),
    )
}

/// Runs `check` on each of the subject's layers of `kind`: the ones that
/// pass, or an error that says there are none (`what`: their name and how
/// to make one) or why each failed.
fn check_each<T>(
    target: &dyn Target,
    subject: &Subject,
    kind: Kind,
    (noun, how): (&str, &str),
    check: impl Fn(&Descriptor) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let layers = find_layers(target, subject, kind)?;
    if layers.is_empty() {
        return Err(SignError::Verification(format!(
            "no {noun} found for {}@{} in {} ({how})",
            subject.repository.name(),
            subject.digest(),
            target.describe()
        )));
    }
    let mut good = Vec::new();
    let mut reasons = Vec::new();
    for l in &layers {
        match check(l) {
            Ok(v) => good.push(v),
            Err(why) => reasons.push(why),
        }
    }
    if good.is_empty() {
        reasons.sort();
        reasons.dedup();
        return Err(SignError::Verification(format!(
            "no matching {noun} for {}@{}: {}",
            subject.repository.name(),
            subject.digest(),
            reasons.join("; ")
        )));
    }
    Ok(good)
}

fn check_signature(
    target: &dyn Target,
    subject: &Subject,
    key: &PublicKey,
    annotations: &BTreeMap<String, String>,
    layer: &Descriptor,
) -> std::result::Result<Verified, String> {
    let sig = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or("a signature layer without its signature annotation")?;
    let sig = B64
        .decode(sig)
        .map_err(|_| "a signature that is not base64".to_string())?;
    let payload = target.blob(layer).map_err(|e| e.to_string())?;
    if !key.verify(&payload, &sig) {
        return Err(format!(
            "invalid signature when validating ASN.1 encoded signature (key {})",
            key.key_id()
        ));
    }
    let claims = SimpleSigning::parse(&payload).map_err(|e| e.to_string())?;
    if !subject
        .digests()
        .iter()
        .any(|d| d.to_string() == claims.manifest_digest)
    {
        return Err(format!(
            "the payload is for {}, not this image",
            claims.manifest_digest
        ));
    }
    // cosign's SimpleClaimVerifier checks the digest and annotations only;
    // a docker-reference for another repository is not an error (the CLI
    // warns, see payload::same_repository).
    for (k, v) in annotations {
        if claims.annotations.get(k) != Some(v) {
            return Err(format!("missing or incorrect annotation {k}={v}"));
        }
    }
    Ok(Verified { payload, claims })
}

/// An attestation that verified.
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    /// The envelope's bytes as stored.
    pub stored: Vec<u8>,
    pub envelope: Envelope,
    pub statement: Statement,
}

/// Checks the subject's attestations: the DSSE signature over the PAE,
/// that the statement is about the image, and (given) its predicate type.
pub fn verify_attestations(
    target: &dyn Target,
    subject: &Subject,
    key: &PublicKey,
    predicate_type: Option<&str>,
) -> Result<Vec<VerifiedAttestation>> {
    check_each(
        target,
        subject,
        Kind::Attestation,
        (
            "attestations",
            "make one with kiln attest --key KEY --predicate FILE",
        ),
        |l| {
            let bytes = target.blob(l).map_err(|e| e.to_string())?;
            let envelope: Envelope =
                serde_json::from_slice(&bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
            let statement = envelope.verify(key).map_err(|e| e.to_string())?;
            if !subject.digests().iter().any(|d| statement.is_about(d)) {
                return Err("the statement's subject is another image".into());
            }
            if let Some(t) = predicate_type {
                if statement.predicate_type != t {
                    return Err(format!(
                        "predicate type {} is not {t}",
                        statement.predicate_type
                    ));
                }
            }
            Ok(VerifiedAttestation {
                stored: bytes,
                envelope,
                statement,
            })
        },
    )
}

/// What [`carry`] did.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    pub copied: usize,
    /// Layers left behind, with why.
    pub skipped: Vec<String>,
}

/// Copies the signatures and attestations the store holds for `from`
/// (the store's subject) to `to` on a registry, keeping those whose
/// payload names `to`'s digest (a push that recompressed layers changes
/// the digest: a signature of the old digest would not verify there, so
/// it is reported, not copied).
pub fn carry(
    from: &dyn Target,
    from_subject: &Subject,
    to: &dyn Target,
    to_subject: &Subject,
) -> Result<Carried> {
    let mut out = Carried::default();
    for kind in [Kind::Signature, Kind::Attestation] {
        for l in find_layers(from, from_subject, kind)? {
            let bytes = from.blob(&l)?;
            let about_target = match kind {
                Kind::Signature => SimpleSigning::parse(&bytes)
                    .map(|c| c.manifest_digest == to_subject.digest().to_string())
                    .unwrap_or(false),
                Kind::Attestation => serde_json::from_slice::<Envelope>(&bytes)
                    .ok()
                    .and_then(|e| B64.decode(&e.payload).ok())
                    .and_then(|p| serde_json::from_slice::<Statement>(&p).ok())
                    .is_some_and(|s| s.is_about(to_subject.digest())),
            };
            if !about_target {
                out.skipped.push(format!(
                    "a {} of {} (the pushed manifest is {}: layers were compressed on push; sign the pushed image: kiln {} --key KEY {}@{})",
                    if kind == Kind::Signature { "signature" } else { "attestation" },
                    from_subject.digest(),
                    to_subject.digest(),
                    if kind == Kind::Signature { "sign" } else { "attest" },
                    to_subject.repository.name(),
                    to_subject.digest(),
                ));
                continue;
            }
            store_layer(
                to,
                to_subject,
                kind,
                l,
                bytes,
                ReferrersMode::Legacy,
                Dupe::Identical,
            )?;
            out.copied += 1;
        }
    }
    Ok(out)
}

//! `kiln sign`, `kiln verify`, `kiln attest`, `kiln verify-attestation`:
//! cosign's key-based commands over the kiln store and registries
//! (`kiln_sign`). An image in the store is signed there (the signature is
//! kept beside it and `kiln push` carries it); any other name, or
//! `--remote`, is an image in a registry, signed where cosign would.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_core::image::Descriptor;
use kiln_core::ImageRef;
use kiln_registry_client::Client;
use kiln_sign::dsse::{predicate_type, Statement};
use kiln_sign::ops;
use kiln_sign::payload::{qualified_name, same_repository};
use kiln_sign::{ReferrersMode, RegistryTarget, StoreTarget, Subject, Target};
use kiln_store::{IndexEntryExt, Store};

use super::registry::RegistryArgs;

/// The image and where to look for it.
#[derive(clap::Args)]
pub(crate) struct ImageArgs {
    /// The image: a name or ID in the kiln store, else NAME[:TAG|@DIGEST] in a registry
    image: String,
    /// Use the registry even when the store holds an image of this name
    #[arg(long)]
    remote: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub(crate) struct SignArgs {
    /// Private key: cosign's encrypted key file (password from KILN_PASSWORD or a prompt) or a PEM key
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Extra key=value annotation to sign (the payload's "optional"); repeatable
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// How a registry gets the signature: legacy (cosign's sha256-<hex>.sig tag) or oci-1-1 (a referrer, listed in the spec's sha256-<hex> fallback tag when the registry has no referrers API)
    #[arg(long, value_enum, default_value = "legacy")]
    registry_referrers_mode: Mode,
    #[command(flatten)]
    image: ImageArgs,
}

#[derive(clap::Args)]
#[command(
    long_about = "Verify an image's signatures with a public key: the ECDSA signature over the payload, that the payload names this image's manifest digest, and the -a annotations (cosign's checks; a payload signed for another repository is accepted with a warning, as cosign accepts it).\n\nkiln is offline: no transparency log (Rekor) and no certificates are ever consulted, only key-based signatures are checked (as cosign verify --insecure-ignore-tlog; hence cosign's tlog warning on stderr). Output as cosign's: the checks on stderr, the JSON array of the verified payloads on stdout."
)]
pub(crate) struct VerifyArgs {
    /// Public key (cosign.pub, PEM)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// An annotation (key=value) every accepted signature must carry; repeatable
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    #[command(flatten)]
    image: ImageArgs,
}

#[derive(clap::Args)]
pub(crate) struct AttestArgs {
    /// Private key (as for kiln sign)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The predicate: a JSON object file (any file for --type custom or spdx, stored as a string)
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// Predicate type: slsaprovenance, slsaprovenance02, slsaprovenance1, link, spdx, spdxjson, cyclonedx, vuln, openvex, custom, or a URI
    #[arg(long = "type", default_value = "custom", value_name = "TYPE")]
    kind: String,
    /// How a registry gets the attestation: legacy (sha256-<hex>.att tag) or oci-1-1
    #[arg(long, value_enum, default_value = "legacy")]
    registry_referrers_mode: Mode,
    #[command(flatten)]
    image: ImageArgs,
}

#[derive(clap::Args)]
#[command(
    long_about = "Verify an image's attestations (in-toto statements in DSSE envelopes) with a public key: the signature over the PAE, that the statement is about this image, and its predicate type (--type, custom unless given, as cosign).\n\nkiln is offline: no transparency log is ever consulted (as cosign verify-attestation --insecure-ignore-tlog). Prints each verified envelope as stored, one per line."
)]
pub(crate) struct VerifyAttestationArgs {
    /// Public key (cosign.pub, PEM)
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Only attestations of this predicate type (as kiln attest --type takes)
    #[arg(long = "type", default_value = "custom", value_name = "TYPE")]
    kind: String,
    #[command(flatten)]
    image: ImageArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Mode {
    Legacy,
    #[value(name = "oci-1-1")]
    Oci11,
}

impl From<Mode> for ReferrersMode {
    fn from(m: Mode) -> ReferrersMode {
        match m {
            Mode::Legacy => ReferrersMode::Legacy,
            Mode::Oci11 => ReferrersMode::Oci11,
        }
    }
}

/// Where the image was found, with its subject.
pub(crate) enum Located<'a> {
    Store(StoreTarget<'a>, Subject),
    Registry(Box<RegistryTarget<'a>>, Subject),
}

impl Located<'_> {
    pub(crate) fn parts(&self) -> (&dyn Target, &Subject) {
        match self {
            Located::Store(t, s) => (t, s),
            Located::Registry(t, s) => (t.as_ref(), s),
        }
    }
}

/// The subject of a stored image: its manifest, the name signed (the one
/// typed when it names the image, else its first name), and the digest a
/// registry knows it by.
pub(crate) fn store_subject(store: &Store, input: &str) -> anyhow::Result<Subject> {
    let (record, _) = store.resolve(input)?;
    let typed = input
        .parse::<ImageRef>()
        .ok()
        .filter(|r| record.names.contains(r) || r.digest().is_some());
    let repository = typed
        .or_else(|| record.names.first().cloned())
        .with_context(|| format!("{input} has no name: a signature names the image's repository; tag it first (kiln tag {input} NAME)"))?;
    let e = &record.entry;
    let also = e
        .pulled_digest()
        .filter(|d| d != &e.digest)
        .into_iter()
        .collect();
    Ok(Subject {
        repository,
        descriptor: Descriptor::new(&e.media_type, e.digest.clone(), e.size),
        also,
    })
}

/// The subject of an image in a registry: the manifest (or index) the
/// reference names now.
pub(crate) fn registry_subject(
    target: &RegistryTarget<'_>,
    reference: &ImageRef,
) -> anyhow::Result<Subject> {
    let at = reference
        .digest()
        .map(|d| d.to_string())
        .or_else(|| reference.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".into());
    let raw = target.manifest(&at)?.with_context(|| {
        format!(
            "{}:{at}: no such manifest in the registry",
            reference.name()
        )
    })?;
    Ok(Subject {
        repository: reference.clone(),
        descriptor: raw.descriptor(),
        also: Vec::new(),
    })
}

fn locate<'a>(
    store: &'a Store,
    client: &'a Option<Client>,
    args: &ImageArgs,
) -> anyhow::Result<Located<'a>> {
    if !args.remote && store.resolve(&args.image).is_ok() {
        return Ok(Located::Store(
            StoreTarget { store },
            store_subject(store, &args.image)?,
        ));
    }
    let reference: ImageRef = args.image.parse()?;
    let client = client.as_ref().context("no registry client")?;
    let target = RegistryTarget::new(client, &reference)?;
    let subject = registry_subject(&target, &reference)?;
    Ok(Located::Registry(Box::new(target), subject))
}

fn annotations(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("-a {kv}: annotations are KEY=VALUE"))
        })
        .collect()
}

fn client_for(store: &Store, args: &ImageArgs) -> anyhow::Result<Option<Client>> {
    let local = !args.remote && store.resolve(&args.image).is_ok();
    Ok(if local {
        None
    } else {
        Some(args.registry.client()?)
    })
}

pub(crate) fn sign(store: &Store, args: SignArgs) -> anyhow::Result<ExitCode> {
    let ann = annotations(&args.annotations)?;
    let key = super::keys::read_private_key(&args.key)?;
    let client = client_for(store, &args.image)?;
    let located = locate(store, &client, &args.image)?;
    let (target, subject) = located.parts();
    let stored = ops::sign(
        target,
        subject,
        &key,
        ann,
        args.registry_referrers_mode.into(),
    )?;
    report_stored(target, &stored, "signature");
    Ok(ExitCode::SUCCESS)
}

/// cosign's line for a stored signature or attestation (`what`), after
/// the warning when the registry had no referrers API.
fn report_stored(target: &dyn Target, stored: &ops::Stored, what: &str) {
    if stored.fell_back {
        eprintln!(
            "WARNING: {} has no referrers API: the {what}'s referrer is listed in the referrers fallback tag instead (the distribution spec's tag schema)",
            target.describe()
        );
    }
    eprintln!("Pushing {what} to: {}", stored.location);
}

pub(crate) fn verify(store: &Store, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let ann = annotations(&args.annotations)?;
    let key = super::keys::read_public_key(&args.key)?;
    let client = client_for(store, &args.image)?;
    let located = locate(store, &client, &args.image)?;
    let (target, subject) = located.parts();
    let verified = ops::verify(target, subject, &key, &ann)?;
    for v in &verified {
        if !same_repository(&v.claims.docker_reference, &subject.repository) {
            eprintln!(
                "WARNING: a signature's payload names {}, not {} (cosign does not check docker-reference)",
                v.claims.docker_reference,
                subject.repository.name()
            );
        }
    }
    print_verification_header(&args.image, subject, !ann.is_empty());
    // Beyond cosign (which names no key): who signed. The payloads on
    // stdout name the docker-reference and the digest.
    eprintln!(
        "Signer key id: {} ({} signature(s) of {})",
        key.key_id(),
        verified.len(),
        subject.digest()
    );
    let payloads: Vec<String> = verified
        .iter()
        .map(|v| String::from_utf8_lossy(&v.payload).into_owned())
        .collect();
    // cosign's PrintVerification (text output): a blank line, the array.
    println!("\n[{}]", payloads.join(","));
    Ok(ExitCode::SUCCESS)
}

/// cosign's tlog warning and PrintVerificationHeader
/// (cmd/cosign/cli/verify.go, cmd/cosign/cli/verify/common.go) for a
/// key-based verification without a transparency log.
fn print_verification_header(image: &ImageArgs, subject: &Subject, annotations: bool) {
    let reference = ImageRef::parse(&image.image).unwrap_or_else(|_| subject.repository.clone());
    eprintln!("WARNING: Skipping tlog verification is an insecure practice that lacks transparency and auditability verification for the signature.");
    eprintln!("\nVerification for {} --", qualified_name(&reference));
    eprintln!("The following checks were performed on each of these signatures:");
    if annotations {
        eprintln!("  - The specified annotations were verified.");
    }
    eprintln!("  - The cosign claims were validated");
    eprintln!("  - The signatures were verified against the specified public key");
}

pub(crate) fn attest(store: &Store, args: AttestArgs) -> anyhow::Result<ExitCode> {
    let uri = predicate_type(&args.kind)?;
    let predicate = std::fs::read(&args.predicate)
        .with_context(|| format!("read predicate {}", args.predicate.display()))?;
    let key = super::keys::read_private_key(&args.key)?;
    let client = client_for(store, &args.image)?;
    let located = locate(store, &client, &args.image)?;
    let (target, subject) = located.parts();
    // cosign: time.Now().UTC().Format(time.RFC3339), whole seconds.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let now = kiln_core::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let statement = Statement::new_typed(
        &subject.repository,
        subject.digest(),
        &uri,
        args.kind == "spdx",
        &predicate,
        &now,
    )?;
    let stored = ops::attest(
        target,
        subject,
        &key,
        &statement,
        args.registry_referrers_mode.into(),
    )?;
    report_stored(target, &stored, "attestation");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verify_attestation(
    store: &Store,
    args: VerifyAttestationArgs,
) -> anyhow::Result<ExitCode> {
    let want = predicate_type(&args.kind)?;
    let key = super::keys::read_public_key(&args.key)?;
    let client = client_for(store, &args.image)?;
    let located = locate(store, &client, &args.image)?;
    let (target, subject) = located.parts();
    let verified = ops::verify_attestations(target, subject, &key, Some(&want))?;
    print_verification_header(&args.image, subject, false);
    // cosign prints each attestation's payload (the stored envelope) as is.
    let mut out = std::io::stdout().lock();
    for v in &verified {
        out.write_all(&v.stored)?;
        out.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

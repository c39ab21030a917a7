//! `--verify-key` and `--signature-policy` on `run`, `create` and `pull`:
//! an image runs (or is pulled) only when the policy accepts it
//! (`kiln_sign::policy`). Signatures are checked in the store for a stored
//! image; a pull checks them in the registry before the image is named in
//! the store, and keeps the verified ones beside it so `run` can check
//! them again offline.

use std::path::PathBuf;

use anyhow::Context;
use kiln_core::ImageRef;
use kiln_registry_client::Client;
use kiln_sign::payload::same_repository;
use kiln_sign::{
    ops, Policy, RegistryTarget, Requirement, SignError, StoreTarget, Subject, Target,
};
use kiln_store::Store;

/// The trust flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct TrustArgs {
    /// Refuse images without a valid signature by this public key (cosign.pub); checked offline
    #[arg(long, value_name = "FILE")]
    pub verify_key: Option<PathBuf>,
    /// Enforce a policy.json (containers-policy.json subset: default and docker scopes; insecureAcceptAnything, reject, sigstoreSigned)
    #[arg(long, value_name = "FILE", conflicts_with = "verify_key")]
    pub signature_policy: Option<PathBuf>,
}

impl TrustArgs {
    /// The policy the flags ask for, if any.
    pub(crate) fn policy(&self) -> anyhow::Result<Option<Policy>> {
        if let Some(key) = &self.verify_key {
            let k = super::keys::read_public_key(key)?;
            return Ok(Some(Policy::require_key(key.display().to_string(), k)));
        }
        match &self.signature_policy {
            Some(p) => Ok(Some(Policy::load(p)?)),
            None => Ok(None),
        }
    }
}

/// Checks `subject` on `target` against the policy's requirements for
/// `name`; the verified signatures' layers are returned for copying.
pub(crate) fn enforce(
    policy: &Policy,
    name: &ImageRef,
    target: &dyn Target,
    subject: &Subject,
) -> anyhow::Result<()> {
    let (scope, reqs) = policy.requirements(name);
    for req in reqs {
        match req {
            Requirement::Accept => {}
            Requirement::Reject => {
                return Err(SignError::Rejected(format!(
                    "{} is rejected by the signature policy ({scope}: reject)",
                    name.familiar()
                ))
                .into())
            }
            Requirement::Signed(keys) => {
                let mut why = Vec::new();
                let ok = keys.iter().any(|(kname, key)| {
                    // containers/image's signedIdentity (matchRepository):
                    // unlike cosign verify, the payload's docker-reference
                    // must name the image's repository.
                    match ops::verify(target, subject, key, &Default::default()) {
                        Ok(v) if v.iter().any(|v| {
                            same_repository(&v.claims.docker_reference, &subject.repository)
                        }) =>
                        {
                            true
                        }
                        Ok(v) => {
                            why.push(format!(
                                "key {kname}: signed for {}, not {} (sign the image under this name)",
                                v.first().map_or("", |v| v.claims.docker_reference.as_str()),
                                subject.repository.name()
                            ));
                            false
                        }
                        Err(e) => {
                            why.push(format!("key {kname}: {e}"));
                            false
                        }
                    }
                });
                if !ok {
                    return Err(SignError::Verification(format!(
                        "refusing {}: no valid signature ({scope} requires one): {}",
                        name.familiar(),
                        why.join("; ")
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// Enforces the policy on an image in the store (run/create).
pub(crate) fn enforce_stored(store: &Store, policy: &Policy, input: &str) -> anyhow::Result<()> {
    let subject = super::sign::store_subject(store, input)?;
    let name = input
        .parse::<ImageRef>()
        .unwrap_or_else(|_| subject.repository.clone());
    enforce(policy, &name, &StoreTarget { store }, &subject)
}

/// Enforces the policy on what `reference` names in the registry, before
/// a pull; returns the accepted subject so the pull can be checked to get
/// the same manifest, and its signatures copied into the store after.
pub(crate) fn enforce_remote(
    client: &Client,
    policy: &Policy,
    reference: &ImageRef,
) -> anyhow::Result<Subject> {
    let target = RegistryTarget::new(client, reference)?;
    let subject = super::sign::registry_subject(&target, reference)?;
    enforce(policy, reference, &target, &subject)?;
    Ok(subject)
}

/// After a verified pull: the pulled digest must be the verified one (a
/// tag moved in between is refused), and the registry's signatures and
/// attestations of it are kept beside the image in the store.
pub(crate) fn keep_signatures(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    verified: &Subject,
    pulled: &kiln_core::Digest,
) -> anyhow::Result<()> {
    if pulled != verified.digest() {
        anyhow::bail!(
            "{} changed during the pull (verified {}, pulled {}): pull again",
            reference.familiar(),
            verified.digest(),
            pulled
        );
    }
    let target = RegistryTarget::new(client, reference)?;
    ops::carry(&target, verified, &StoreTarget { store }, verified)
        .context("keep the verified signatures in the store")?;
    Ok(())
}

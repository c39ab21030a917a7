//! Where signatures are read and written: a small trait over the kiln
//! store and a registry repository, so signing and verification are one
//! code path for both (and tests can use a store without a registry).

use kiln_core::image::{Descriptor, RawManifest};
use kiln_core::{ErrorKind, ImageRef};
use kiln_registry_client::{Client, RegistryError, Repo};
use kiln_store::Store;

use crate::error::{Result, SignError};

/// Payloads and envelopes larger than this are refused (cosign's own
/// payloads are a few hundred bytes; an SBOM attestation a few MiB).
pub const MAX_LAYER_BYTES: u64 = 64 << 20;

/// A place holding images' signatures.
pub trait Target {
    /// For messages: the store, or `registry/repository`.
    fn describe(&self) -> String;
    /// Whether signatures go under cosign's tags here (a registry) or only
    /// as referrers (the store keeps no `.sig` tags: they would list as
    /// images).
    fn supports_tags(&self) -> bool;
    /// A manifest by tag or digest; `None` when there is none.
    fn manifest(&self, reference: &str) -> Result<Option<RawManifest>>;
    /// A blob's bytes, checked against its digest.
    fn blob(&self, d: &Descriptor) -> Result<Vec<u8>>;
    fn put_blob(&self, bytes: &[u8]) -> Result<()>;
    /// Writes a manifest under `tag`, or by digest alone.
    fn put_manifest(&self, m: &RawManifest, tag: Option<&str>) -> Result<()>;
    /// The referrers of `subject`, or `None` without a referrers API.
    fn referrers(&self, subject: &kiln_core::Digest) -> Result<Option<Vec<Descriptor>>>;
}

/// Signatures in the kiln store, kept as referrers of the image.
pub struct StoreTarget<'a> {
    pub store: &'a Store,
}

impl Target for StoreTarget<'_> {
    fn describe(&self) -> String {
        format!("the kiln store ({})", self.store.root().display())
    }

    fn supports_tags(&self) -> bool {
        false
    }

    fn manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        let Ok(digest) = reference.parse::<kiln_core::Digest>() else {
            return Ok(None);
        };
        if !self.store.blobs().exists(&digest) {
            return Ok(None);
        }
        let bytes = self.store.blobs().read(&digest)?;
        let m = RawManifest::new(bytes, None, &format!("manifest {digest}"))
            .map_err(|e| SignError::invalid(format!("manifest {digest}"), e))?;
        Ok(Some(m))
    }

    fn blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        if d.size > MAX_LAYER_BYTES {
            return Err(SignError::invalid(
                format!("blob {}", d.digest),
                format!(
                    "{} bytes is over kiln's {MAX_LAYER_BYTES}-byte limit for signature payloads",
                    d.size
                ),
            ));
        }
        // The store verified the blob when it took it in; it is read back
        // and checked once more since a signature's meaning hangs on it.
        let bytes = self.store.blobs().read(&d.digest)?;
        if kiln_core::Digest::sha256(&bytes) != d.digest {
            return Err(SignError::Verification(format!(
                "blob {} in the store does not match its digest",
                d.digest
            )));
        }
        Ok(bytes)
    }

    fn put_blob(&self, bytes: &[u8]) -> Result<()> {
        self.store.blobs().put(bytes, None)?;
        Ok(())
    }

    fn put_manifest(&self, m: &RawManifest, tag: Option<&str>) -> Result<()> {
        if let Some(tag) = tag {
            return Err(SignError::Unsupported(format!(
                "the kiln store keeps signatures as referrers, not under tag {tag}"
            )));
        }
        self.store.blobs().put(&m.bytes, Some(&m.digest))?;
        let entry = m.descriptor();
        self.store.update_index(|idx| {
            idx.add_untagged(&entry);
            Ok(())
        })?;
        Ok(())
    }

    fn referrers(&self, subject: &kiln_core::Digest) -> Result<Option<Vec<Descriptor>>> {
        Ok(Some(self.store.referrers(subject, None)?))
    }
}

/// Signatures in a registry repository, through kiln's registry client
/// on a runtime of its own (the CLI is synchronous).
pub struct RegistryTarget<'a> {
    pub client: &'a Client,
    pub repo: Repo,
    rt: tokio::runtime::Runtime,
}

impl<'a> RegistryTarget<'a> {
    pub fn new(client: &'a Client, reference: &ImageRef) -> Result<RegistryTarget<'a>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SignError::Io {
                what: "start the async runtime".into(),
                source: e,
            })?;
        Ok(RegistryTarget {
            client,
            repo: Repo::of(reference),
            rt,
        })
    }

    /// Runs one registry call.
    pub fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

impl Target for RegistryTarget<'_> {
    fn describe(&self) -> String {
        self.repo.to_string()
    }

    fn supports_tags(&self) -> bool {
        true
    }

    fn manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        match self.run(self.client.get_manifest(&self.repo, reference)) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let limit = MAX_LAYER_BYTES.min(d.size);
        Ok(self.run(self.client.read_blob(&self.repo, &d.digest, limit))?)
    }

    fn put_blob(&self, bytes: &[u8]) -> Result<()> {
        let digest = kiln_core::Digest::sha256(bytes);
        if self
            .run(self.client.blob_exists(&self.repo, &digest, true))?
            .is_some()
        {
            return Ok(());
        }
        let io = |e: std::io::Error| SignError::Io {
            what: "write a temporary blob".into(),
            source: e,
        };
        let mut file = tempfile::NamedTempFile::new().map_err(io)?;
        std::io::Write::write_all(&mut file, bytes).map_err(io)?;
        self.run(
            self.client
                .upload_blob(&self.repo, &digest, file.path(), None, &|_| {}),
        )?;
        Ok(())
    }

    fn put_manifest(&self, m: &RawManifest, tag: Option<&str>) -> Result<()> {
        let reference = tag
            .map(str::to_string)
            .unwrap_or_else(|| m.digest.to_string());
        self.run(
            self.client
                .put_manifest(&self.repo, &reference, &m.media_type, &m.bytes),
        )?;
        Ok(())
    }

    fn referrers(&self, subject: &kiln_core::Digest) -> Result<Option<Vec<Descriptor>>> {
        let found: Result<_, RegistryError> = self.run(self.client.referrers(&self.repo, subject));
        Ok(found?.map(|idx| idx.manifests))
    }
}

impl RegistryTarget<'_> {
    /// Where cosign's tags for `subject` live, for messages.
    pub fn describe_tags(&self, subject: &crate::Subject) -> String {
        format!(
            "{}:{}-{}.{{sig,att}}",
            self.repo,
            subject.digest().algorithm().as_str(),
            subject.digest().hex()
        )
    }
}

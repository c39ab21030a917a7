//! Upload state carried by the client: the `_state` parameter of an
//! upload's `Location` URL.
//!
//! A storage that keeps nothing about an upload between requests (the
//! object storage: replicas share only the bucket) hands the server an
//! [`UploadState`](crate::storage::UploadState) after each write; the
//! server puts it in the next `Location`, together with the repository and
//! the upload id, and signs the whole with HMAC-SHA256 under a secret every
//! replica shares (`kiln serve --upload-secret-file`). Whichever replica
//! the client's next request reaches checks the signature and hands the
//! state back to its storage, so no replica needs to have seen the upload
//! before, and no client can forge a part list, an offset or another
//! repository's upload. The same scheme as distribution's `_state`.
//!
//! Format: `base64url(json) "." base64url(hmac)`, no padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs and checks upload states.
#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    /// Repository.
    n: String,
    /// Upload id.
    i: String,
    /// The storage's state.
    s: String,
}

/// Why a `_state` was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not ours: another secret, or changed on the way.
    Signature,
    /// Signed, but for another repository or upload.
    Mismatch,
    /// Not even the format.
    Malformed,
}

impl Signer {
    /// A signer with `key`; with none, a random key (uploads can then be
    /// continued only by this process).
    pub(crate) fn new(key: Option<&[u8]>) -> Signer {
        let key = match key {
            Some(k) => k.to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                // Without randomness a key of zeroes would still sign; the
                // process then trusts its own states only as far as the
                // repository and id checks go. getrandom does not fail on
                // Linux once the pool is initialised.
                let _ = getrandom::getrandom(&mut k);
                k
            }
        };
        Signer { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        #[allow(clippy::unwrap_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap();
        mac.update(payload);
        mac
    }

    /// The `_state` value for `state` of upload `id` in `repo`.
    pub(crate) fn sign(&self, repo: &str, id: &str, state: &str) -> String {
        let payload = Payload {
            n: repo.into(),
            i: id.into(),
            s: state.into(),
        };
        // Serializing three strings cannot fail.
        #[allow(clippy::unwrap_used)]
        let json = serde_json::to_vec(&payload).unwrap();
        let body = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The state in `token`, when this secret signed it for `id` of `repo`.
    pub(crate) fn verify(&self, repo: &str, id: &str, token: &str) -> Result<String, Refused> {
        let (body, tag) = token.split_once('.').ok_or(Refused::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| Refused::Malformed)?;
        // Constant-time comparison.
        self.mac(body.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| Refused::Signature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Refused::Malformed)?;
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| Refused::Malformed)?;
        if payload.n != repo || payload.i != id {
            return Err(Refused::Mismatch);
        }
        Ok(payload.s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_round_trips_only_under_its_key_and_upload() {
        let a = Signer::new(Some(b"shared secret"));
        let b = Signer::new(Some(b"shared secret"));
        let other = Signer::new(Some(b"another secret"));
        let token = a.sign("team/app", "00ff", r#"{"n":5}"#);
        assert_eq!(
            b.verify("team/app", "00ff", &token).as_deref(),
            Ok(r#"{"n":5}"#)
        );
        assert_eq!(
            other.verify("team/app", "00ff", &token),
            Err(Refused::Signature)
        );
        assert_eq!(
            b.verify("team/other", "00ff", &token),
            Err(Refused::Mismatch)
        );
        assert_eq!(b.verify("team/app", "00fe", &token), Err(Refused::Mismatch));
        // A changed body (a forged offset) breaks the signature.
        let (body, tag) = token.split_once('.').unwrap();
        let json = URL_SAFE_NO_PAD.decode(body).unwrap();
        let forged = String::from_utf8(json).unwrap().replace("5", "9");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(
            b.verify("team/app", "00ff", &forged),
            Err(Refused::Signature)
        );
        assert_eq!(
            b.verify("team/app", "00ff", "nodot"),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn random_keys_differ() {
        let token = Signer::new(None).sign("a", "1", "s");
        assert_eq!(
            Signer::new(None).verify("a", "1", &token),
            Err(Refused::Signature)
        );
    }
}

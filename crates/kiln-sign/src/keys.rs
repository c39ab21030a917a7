//! Keys as cosign writes and reads them.
//!
//! - The private key file (`cosign.key`): PEM `ENCRYPTED SIGSTORE PRIVATE
//!   KEY` (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is
//!   go-securesystemslib's `encrypted` JSON: a scrypt KDF (N, r, p and a
//!   32-byte salt) deriving a 32-byte key for NaCl secretbox
//!   (XSalsa20-Poly1305, 24-byte nonce) over the PKCS#8 DER of the private
//!   key. Byte fields are standard base64, as Go's `encoding/json` writes
//!   `[]byte`.
//! - The public key file (`cosign.pub`): PEM `PUBLIC KEY` (PKIX).
//!
//! Only ECDSA P-256 keys (cosign's default, and what `generate-key-pair`
//! makes) are handled; RSA and Ed25519 keys are refused by name. The
//! curve arithmetic, DER and PEM are RustCrypto's (`p256`), scrypt and
//! secretbox too; the JSON envelope is the part written here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, SignError};

/// The PEM label cosign ≥ 2 writes for its private keys.
pub const SIGSTORE_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign 1.x wrote; still read.
pub const COSIGN_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt cost kiln writes: N = 2^16, r = 8, p = 1.
const SCRYPT_LOG_N: u8 = 16;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The scrypt parameter sets (N, r, p) a key file may use: exactly the
/// ones go-securesystemslib's `encrypted` package accepts (its
/// `scryptKDF.CheckParams`: legacy 2^15, standard 2^16, OWASP 2^17, each
/// with r = 8, p = 1). The file is input; a large N or r would be a
/// memory-exhaustion denial of service.
const SCRYPT_ALLOWED: &[(u64, u32, u32)] = &[(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)];

/// A private signing key (ECDSA P-256).
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

/// A public verification key (ECDSA P-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::*;
    pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::random(&mut OsRng))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// ECDSA P-256 over SHA-256 of `message`, ASN.1 DER (Go's
    /// `ecdsa.SignASN1`, what cosign stores).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(message);
        sig.to_der().as_bytes().to_vec()
    }

    /// cosign's encrypted key file for `password`.
    pub fn to_cosign_pem(&self, password: &[u8]) -> Result<String> {
        let der = self
            .0
            .to_pkcs8_der()
            .map_err(|e| SignError::bad_key("encode private key", e))?;
        let mut salt = vec![0u8; 32];
        OsRng.fill_bytes(&mut salt);
        let mut nonce = vec![0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let key = derive(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
        let ciphertext = XSalsa20Poly1305::new(key.as_slice().into())
            .encrypt(nonce.as_slice().into(), der.as_bytes())
            .map_err(|_| SignError::bad_key("encrypt private key", "secretbox failed"))?;
        let doc = Encrypted {
            kdf: Kdf {
                name: "scrypt".into(),
                params: ScryptParams {
                    n: 1 << SCRYPT_LOG_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt,
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce,
            },
            ciphertext,
        };
        let json = serde_json::to_vec(&doc).map_err(|e| SignError::bad_key("encode key", e))?;
        Ok(pem_encode(SIGSTORE_PEM, &json))
    }

    /// Reads a private key file: cosign's encrypted format (opened with
    /// `password`), or a plain PKCS#8 `PRIVATE KEY` / SEC1 `EC PRIVATE
    /// KEY` PEM (as `cosign import-key-pair` takes). `what` names the file.
    pub fn from_pem(
        text: &str,
        password: impl FnOnce() -> Result<Zeroizing<Vec<u8>>>,
        what: &str,
    ) -> Result<PrivateKey> {
        let (label, body) = pem_decode(text, what)?;
        match label.as_str() {
            SIGSTORE_PEM | COSIGN_PEM => {
                let doc: Encrypted = serde_json::from_slice(&body)
                    .map_err(|e| SignError::bad_key(what, format!("not cosign's encrypted key JSON: {e}")))?;
                if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
                    return Err(SignError::bad_key(
                        what,
                        format!(
                            "kdf {:?} with cipher {:?}: kiln reads scrypt with nacl/secretbox, as cosign writes",
                            doc.kdf.name, doc.cipher.name
                        ),
                    ));
                }
                let (n, r, p) = (doc.kdf.params.n, doc.kdf.params.r, doc.kdf.params.p);
                check_scrypt_params(n, r, p).map_err(|m| SignError::bad_key(what, m))?;
                let log_n = n.trailing_zeros() as u8;
                if doc.cipher.nonce.len() != 24 {
                    return Err(SignError::bad_key(what, "the secretbox nonce is not 24 bytes"));
                }
                let password = password()?;
                let key = derive(&password, &doc.kdf.salt, log_n, doc.kdf.params.r, doc.kdf.params.p)?;
                let der = XSalsa20Poly1305::new(key.as_slice().into())
                    .decrypt(doc.cipher.nonce.as_slice().into(), doc.ciphertext.as_slice())
                    .map_err(|_| SignError::WrongPassword { what: what.to_string() })?;
                let der = Zeroizing::new(der);
                SigningKey::from_pkcs8_der(&der)
                    .map(PrivateKey)
                    .map_err(|e| SignError::bad_key(what, format!("the decrypted key is not an ECDSA P-256 PKCS#8 key: {e}")))
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&body).map(PrivateKey).map_err(|e| {
                SignError::bad_key(what, format!("not an ECDSA P-256 PKCS#8 key ({e}); kiln signs with P-256 keys only"))
            }),
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&body)
                .map(|k| PrivateKey(SigningKey::from(k)))
                .map_err(|e| SignError::bad_key(what, format!("not a P-256 EC key ({e}); kiln signs with P-256 keys only"))),
            "RSA PRIVATE KEY" | "OPENSSH PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => Err(SignError::bad_key(
                what,
                format!("a {label} is not supported: kiln signs with ECDSA P-256 keys (make one with kiln generate-key-pair, or openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt)"),
            )),
            "PUBLIC KEY" => Err(SignError::bad_key(what, "this is a public key; signing needs the private key (cosign.key)")),
            other => Err(SignError::bad_key(what, format!("PEM block {other:?} is no private key kiln reads"))),
        }
    }
}

impl PublicKey {
    /// Reads a PKIX `PUBLIC KEY` PEM.
    pub fn from_pem(text: &str, what: &str) -> Result<PublicKey> {
        let (label, body) = pem_decode(text, what)?;
        match label.as_str() {
            "PUBLIC KEY" => VerifyingKey::from_public_key_der(&body)
                .map(PublicKey)
                .map_err(|e| {
                    SignError::bad_key(what, format!("not an ECDSA P-256 public key ({e})"))
                }),
            SIGSTORE_PEM | COSIGN_PEM | "PRIVATE KEY" | "EC PRIVATE KEY" => {
                Err(SignError::bad_key(
                    what,
                    "this is a private key; verify with the public key (cosign.pub)",
                ))
            }
            other => Err(SignError::bad_key(
                what,
                format!("PEM block {other:?} is no public key kiln reads"),
            )),
        }
    }

    /// The PKIX PEM cosign writes (`cosign.pub`).
    pub fn to_pem(&self) -> Result<String> {
        let der = self.der()?;
        Ok(pem_encode("PUBLIC KEY", &der))
    }

    fn der(&self) -> Result<Vec<u8>> {
        self.0
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| SignError::bad_key("encode public key", e))
    }

    /// The key's id as kiln prints it: `sha256:` and the hex SHA-256 of
    /// its PKIX DER (what `openssl pkey -pubin -outform DER | sha256sum`
    /// prints).
    pub fn key_id(&self) -> String {
        let der = self.der().unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&der)))
    }

    /// Whether `signature` (ASN.1 DER, as cosign stores it) is this key's
    /// ECDSA signature over SHA-256 of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_der(signature)
            .map(|s| self.0.verify(message, &s).is_ok())
            .unwrap_or(false)
    }
}

/// go-securesystemslib `encrypted.scryptKDF.CheckParams`: only the known
/// parameter sets.
fn check_scrypt_params(n: u64, r: u32, p: u32) -> std::result::Result<(), String> {
    if SCRYPT_ALLOWED.contains(&(n, r, p)) {
        return Ok(());
    }
    Err(format!(
        "unexpected scrypt parameters N={n}, r={r}, p={p}: cosign (go-securesystemslib) accepts only N = 32768, 65536 or 131072 with r = 8, p = 1"
    ))
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<Zeroizing<Vec<u8>>> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| SignError::bad_key("scrypt parameters", e))?;
    let mut key = Zeroizing::new(vec![0u8; 32]);
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| SignError::bad_key("scrypt", e))?;
    Ok(key)
}

/// PEM with 64-column base64 lines, as Go's `pem.Encode` writes.
fn pem_encode(label: &str, body: &[u8]) -> String {
    let b = B64.encode(body);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first PEM block of `text`: its label and decoded body.
fn pem_decode(text: &str, what: &str) -> Result<(String, Vec<u8>)> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| SignError::bad_key(what, "no PEM block (-----BEGIN …-----) in the file"))?;
    let rest = &text[start + 11..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| SignError::bad_key(what, "a PEM BEGIN line without its closing dashes"))?;
    let label = rest[..label_end].to_string();
    let end_marker = format!("-----END {label}-----");
    let body = &rest[label_end + 5..];
    let body_end = body
        .find(&end_marker)
        .ok_or_else(|| SignError::bad_key(what, format!("PEM block {label} has no END line")))?;
    let b64: String = body[..body_end]
        .lines()
        .filter(|l| !l.contains(':')) // RFC 1421 headers, if any
        .collect::<String>()
        .split_whitespace()
        .collect();
    let bytes = B64
        .decode(b64)
        .map_err(|e| SignError::bad_key(what, format!("PEM block {label}: bad base64: {e}")))?;
    Ok((label, bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pw(p: &'static str) -> impl FnOnce() -> Result<Zeroizing<Vec<u8>>> {
        move || Ok(Zeroizing::new(p.as_bytes().to_vec()))
    }

    #[test]
    fn encrypted_round_trip_and_wrong_password() {
        let k = PrivateKey::generate();
        let pem = k.to_cosign_pem(b"hunter2").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(&pem, pw("hunter2"), "k").unwrap();
        assert_eq!(back.public(), k.public());
        let err = PrivateKey::from_pem(&pem, pw("nope"), "k").err().unwrap();
        assert!(matches!(err, SignError::WrongPassword { .. }), "{err}");
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let k = PrivateKey::generate();
        let sig = k.sign(b"payload");
        let public = PublicKey::from_pem(&k.public().to_pem().unwrap(), "pub").unwrap();
        assert!(public.verify(b"payload", &sig));
        assert!(!public.verify(b"payloaD", &sig));
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!public.verify(b"payload", &bad));
        assert!(public.key_id().starts_with("sha256:"));
    }

    #[test]
    fn private_key_as_public_is_named() {
        let k = PrivateKey::generate();
        let pem = k.to_cosign_pem(b"").unwrap();
        let err = PublicKey::from_pem(&pem, "cosign.key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cosign.pub"), "{err}");
    }

    #[test]
    fn only_cosigns_scrypt_parameters_are_accepted() {
        for (n, r, p) in [(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)] {
            assert!(check_scrypt_params(n, r, p).is_ok());
        }
        for (n, r, p) in [
            (16384, 8, 1),
            (1 << 20, 8, 1),
            (65536, 1 << 20, 1),
            (65536, 8, 2),
            (65535, 8, 1),
        ] {
            assert!(check_scrypt_params(n, r, p).is_err(), "{n} {r} {p}");
        }
        // A key file with a huge r is refused before any scrypt work and
        // before the password is asked for.
        let k = PrivateKey::generate();
        let pem = k.to_cosign_pem(b"pw").unwrap();
        let (label, body) = pem_decode(&pem, "k").unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        doc["kdf"]["params"]["r"] = serde_json::json!(1u32 << 24);
        let bad = pem_encode(&label, &serde_json::to_vec(&doc).unwrap());
        let err = PrivateKey::from_pem(&bad, || panic!("password asked"), "k")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unexpected scrypt parameters"), "{err}");
    }
}

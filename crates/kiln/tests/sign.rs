//! `kiln generate-key-pair`, `sign`, `verify`, `attest`,
//! `verify-attestation`, and the trust flags of `pull`, `run` and `create`,
//! checked against an independent implementation of cosign's formats:
//! `sign/cosign_check.py` (PyPI `cryptography` and `pynacl`, installed by
//! scripts/setup.sh; a missing one fails the test) decrypts kiln's key
//! files and verifies kiln's signatures as cosign's code does, and makes
//! keys and signatures kiln must accept. Registries: the distribution
//! registry (no referrers API: cosign's tags) and `kiln serve` (referrers),
//! both on 127.0.0.1 and stopped when a test ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::registry::{Auth, Registry};
use common::serve::Serve;
use common::Kiln;

const PASSWORD: &str = "correct horse";

fn checker() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sign/cosign_check.py")
}

/// Runs the Python checker; its output whatever the status.
fn py(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(checker())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn py_ok(args: &[&str]) -> String {
    let out = py(args);
    assert!(
        out.status.success(),
        "cosign_check.py {args:?}: {} (scripts/setup.sh installs cryptography and pynacl)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kiln with the key password in its environment.
fn kiln_pw(kiln: &Kiln, args: &[&str]) -> Output {
    kiln.cmd()
        .args(args)
        .env("KILN_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn ok_pw(kiln: &Kiln, args: &[&str]) -> (String, String) {
    let out = kiln_pw(kiln, args);
    assert!(
        out.status.success(),
        "kiln {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A key pair made by `kiln generate-key-pair`: (PREFIX.key, PREFIX.pub).
fn kiln_keys(kiln: &Kiln, name: &str) -> (String, String) {
    let prefix = kiln.path(name);
    let prefix = prefix.to_str().unwrap();
    ok_pw(kiln, &["generate-key-pair", "--output-key-prefix", prefix]);
    (format!("{prefix}.key"), format!("{prefix}.pub"))
}

fn store_blob(kiln: &Kiln, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(kiln.root.join("blobs/sha256").join(hex)).unwrap()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// GET `http://{host}/v2/{path}` as JSON, with `accept` if given; the
/// request must succeed.
fn registry_get(host: &str, path: &str, accept: Option<&str>) -> serde_json::Value {
    let mut curl = Command::new("curl");
    curl.arg("-sf");
    if let Some(a) = accept {
        curl.arg("-H").arg(format!("Accept: {a}"));
    }
    let out = curl
        .arg(format!("http://{host}/v2/{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {host}/v2/{path} failed");
    json(&out.stdout)
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn kiln_keys_and_store_signatures_check_out_in_python() {
    let kiln = Kiln::new();
    let (key, public) = kiln_keys(&kiln, "k");
    // cosign's key file: Python decrypts it and derives kiln's public key.
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{text}"
    );
    let derived = py_ok(&["decrypt", &key, PASSWORD]);
    assert_eq!(derived, std::fs::read_to_string(&public).unwrap());
    // Wrong password: refused, by name.
    let out = kiln
        .cmd()
        .args(["sign", "--key", &key, "app:v1"])
        .env("KILN_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));

    kiln.import_busybox("app:v1", &[], &[]);
    let (_, err) = ok_pw(&kiln, &["sign", "--key", &key, "-a", "env=test", "app:v1"]);
    assert!(err.contains("referrer of"), "{err}");
    let (stdout, stderr) = ok_pw(
        &kiln,
        &["verify", "--key", &public, "-a", "env=test", "app:v1"],
    );
    assert!(
        stderr.contains("The cosign claims were validated"),
        "{stderr}"
    );
    // cosign's lines exactly (cmd/cosign/cli/verify/common.go), with its
    // tlog warning: kiln never consults a transparency log.
    assert!(
        stderr.contains(
            "WARNING: Skipping tlog verification is an insecure practice that lacks transparency and auditability verification for the signature.\n\
             \nVerification for index.docker.io/library/app:v1 --\n\
             The following checks were performed on each of these signatures:\n\
             \x20 - The specified annotations were verified.\n\
             \x20 - The cosign claims were validated\n\
             \x20 - The signatures were verified against the specified public key\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Verified "), "{stderr}");
    assert!(stderr.contains("Signer key id: sha256:"), "{stderr}");
    assert!(stdout.starts_with("\n["), "{stdout:?}");
    let (_, plain) = ok_pw(&kiln, &["verify", "--key", &public, "app:v1"]);
    assert!(!plain.contains("annotations were verified"), "{plain}");
    let payloads = json(stdout.as_bytes());
    let claims = &payloads[0];
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        "index.docker.io/library/app"
    );
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(claims["optional"]["env"], "test");

    // The stored signature, read from the store's files, verifies in
    // Python over the exact payload bytes, and names the image it refers to.
    let refs = kiln.ok(&["image", "referrers", "app:v1", "--format", "json"]);
    let referrer = json(refs.lines().next().unwrap().as_bytes());
    assert_eq!(
        referrer["artifactType"],
        "application/vnd.dev.cosign.artifact.sig.v1+json"
    );
    let manifest = json(&store_blob(&kiln, referrer["digest"].as_str().unwrap()));
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = store_blob(&kiln, layer["digest"].as_str().unwrap());
    assert_eq!(
        json(&payload)["critical"]["image"]["docker-manifest-digest"],
        manifest["subject"]["digest"]
    );
    let payload_file = kiln.path("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let sig = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    py_ok(&["verify", &public, payload_file.to_str().unwrap(), sig]);
    // Python refuses a changed payload with the same signature (the check
    // is real), and kiln's verify refuses what does not match.
    std::fs::write(&payload_file, [&payload[..], b" "].concat()).unwrap();
    assert!(
        !py(&["verify", &public, payload_file.to_str().unwrap(), sig])
            .status
            .success()
    );
    let err = kiln.fails(&["verify", "--key", &public, "-a", "env=prod", "app:v1"]);
    assert!(
        err.contains("missing or incorrect annotation env=prod"),
        "{err}"
    );
    let other = kiln.path("other");
    py_ok(&["make-key", other.to_str().unwrap(), PASSWORD]);
    let other_pub = format!("{}.pub", other.display());
    let err = kiln.fails(&["verify", "--key", &other_pub, "app:v1"]);
    assert!(err.contains("invalid signature"), "{err}");
    kiln.import_busybox("unsigned:v1", &[("x", b"x")], &[]);
    let err = kiln.fails(&["verify", "--key", &public, "unsigned:v1"]);
    assert!(err.contains("no signatures found"), "{err}");

    // A key made by Python in cosign's format signs in kiln.
    let other_key = format!("{}.key", other.display());
    ok_pw(&kiln, &["sign", "--key", &other_key, "unsigned:v1"]);
    ok_pw(&kiln, &["verify", "--key", &other_pub, "unsigned:v1"]);

    // Attestations: a DSSE envelope Python verifies over the PAE.
    let predicate = kiln.path("provenance.json");
    std::fs::write(
        &predicate,
        br#"{"builder":{"id":"https://example.com/builder"},"buildType":"test"}"#,
    )
    .unwrap();
    ok_pw(
        &kiln,
        &[
            "attest",
            "--key",
            &key,
            "--predicate",
            predicate.to_str().unwrap(),
            "--type",
            "slsaprovenance",
            "app:v1",
        ],
    );
    let (out, _) = ok_pw(
        &kiln,
        &[
            "verify-attestation",
            "--key",
            &public,
            "--type",
            "slsaprovenance",
            "app:v1",
        ],
    );
    let envelope = kiln.path("envelope.json");
    std::fs::write(&envelope, out.lines().next().unwrap()).unwrap();
    py_ok(&["verify-dsse", &public, envelope.to_str().unwrap()]);
    let env = json(out.lines().next().unwrap().as_bytes());
    use base64::Engine;
    let statement = json(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    );
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(
        statement["predicateType"],
        "https://slsa.dev/provenance/v0.2"
    );
    assert_eq!(
        statement["predicate"]["builder"]["id"],
        "https://example.com/builder"
    );
    let err = kiln.fails(&[
        "verify-attestation",
        "--key",
        &public,
        "--type",
        "cyclonedx",
        "app:v1",
    ]);
    assert!(err.contains("is not https://cyclonedx.org/bom"), "{err}");
    let err = kiln.fails(&["verify-attestation", "--key", &other_pub, "app:v1"]);
    assert!(
        err.contains("no signature of the envelope verifies"),
        "{err}"
    );
}

/// Imports a busybox image, pushes it as HOST/REPO:v1; returns the name.
fn push_image(kiln: &Kiln, host: &str, repo: &str, extra: &[u8]) -> String {
    let name = format!("{host}/{repo}:v1");
    kiln.import_busybox(&name, &[("marker", extra)], &[]);
    kiln.ok(&["push", "-q", &name]);
    name
}

fn manifest_digest(kiln: &Kiln, key: &str, name: &str) -> String {
    let (out, _) = ok_pw(kiln, &["verify", "--remote", "--key", key, name]);
    json(out.as_bytes())[0]["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn registry_round(host: &str, has_referrers: bool) {
    let kiln = Kiln::new();
    let (key, public) = kiln_keys(&kiln, "k");
    let name = push_image(&kiln, host, "app", b"1");
    // Legacy: cosign's tag, appended to by a second signature.
    let (_, err) = ok_pw(&kiln, &["sign", "--remote", "--key", &key, &name]);
    assert!(err.contains(".sig"), "{err}");
    let (_, err) = ok_pw(
        &kiln,
        &["sign", "--remote", "--key", &key, "-a", "n=2", &name],
    );
    assert!(err.contains(".sig"), "{err}");
    let digest = manifest_digest(&kiln, &public, &name);
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let sig = registry_get(host, &format!("app/manifests/{tag}"), Some(OCI_MANIFEST));
    assert_eq!(sig["layers"].as_array().unwrap().len(), 2);
    // Signing again with the same key and annotations is a duplicate
    // (cosign's DupeDetector: the stored signature verifies), though
    // ECDSA gives another signature string.
    ok_pw(&kiln, &["sign", "--remote", "--key", &key, &name]);
    let again = registry_get(host, &format!("app/manifests/{tag}"), Some(OCI_MANIFEST));
    assert_eq!(again["layers"].as_array().unwrap().len(), 2);
    let config_path = format!("app/blobs/{}", again["config"]["digest"].as_str().unwrap());
    assert_eq!(
        registry_get(host, &config_path, None)["history"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "one history entry per layer, as go-containerregistry's mutate.Append"
    );
    // OCI 1.1: a referrer where the registry has the API, else the tag.
    let (_, err) = ok_pw(
        &kiln,
        &[
            "sign",
            "--remote",
            "--registry-referrers-mode",
            "oci-1-1",
            "--key",
            &key,
            "-a",
            "n=3",
            &name,
        ],
    );
    if has_referrers {
        assert!(err.contains("referrer of"), "{err}");
        let idx = registry_get(host, &format!("app/referrers/{digest}"), None);
        assert_eq!(
            idx["manifests"][0]["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
    } else {
        // The distribution spec's fallback: an index under sha256-<hex>.
        assert!(err.contains("no referrers API"), "{err}");
        let tag = digest.replacen(':', "-", 1);
        assert!(
            err.contains(&format!("listed in {host}/app:{tag}")) || err.contains(&tag),
            "{err}"
        );
        let idx = registry_get(
            host,
            &format!("app/manifests/{tag}"),
            Some("application/vnd.oci.image.index.v1+json"),
        );
        assert_eq!(
            idx["manifests"][0]["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
    }
    let (out, err) = ok_pw(
        &kiln,
        &["verify", "--remote", "--key", &public, "-a", "n=3", &name],
    );
    assert_eq!(json(out.as_bytes()).as_array().unwrap().len(), 1, "{err}");
    let (out, _) = ok_pw(&kiln, &["verify", "--remote", "--key", &public, &name]);
    assert_eq!(json(out.as_bytes()).as_array().unwrap().len(), 3);

    // Signatures made by Python, pushed under cosign's tag: kiln accepts
    // the honest one and refuses tampered ones.
    let pyk = kiln.path("py");
    py_ok(&["make-key", pyk.to_str().unwrap(), PASSWORD]);
    let (pykey, pypub) = (
        format!("{}.key", pyk.display()),
        format!("{}.pub", pyk.display()),
    );
    for (repo, tamper) in [
        ("py-good", ""),
        ("py-payload", "payload"),
        ("py-sig", "signature"),
    ] {
        let name = push_image(&kiln, host, repo, repo.as_bytes());
        let digest = manifest_digest_unsigned(&kiln, &name);
        let mut args = vec!["sign-push", &pykey, PASSWORD, host, repo, &digest];
        if !tamper.is_empty() {
            args.push(tamper);
        }
        py_ok(&args);
        let out = kiln.run(&["verify", "--remote", "--key", &pypub, &name]);
        assert_eq!(
            out.status.success(),
            tamper.is_empty(),
            "{repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !tamper.is_empty() {
            assert_eq!(out.status.code(), Some(1));
        }
    }
    // Attestations in the registry.
    let predicate = kiln.path("sbom.json");
    std::fs::write(
        &predicate,
        br#"{"bomFormat":"CycloneDX","specVersion":"1.6"}"#,
    )
    .unwrap();
    ok_pw(
        &kiln,
        &[
            "attest",
            "--remote",
            "--key",
            &key,
            "--type",
            "cyclonedx",
            "--predicate",
            predicate.to_str().unwrap(),
            &name,
        ],
    );
    let (out, _) = ok_pw(
        &kiln,
        &[
            "verify-attestation",
            "--remote",
            "--key",
            &public,
            "--type",
            "cyclonedx",
            &name,
        ],
    );
    let envelope = kiln.path("env.json");
    std::fs::write(&envelope, out.lines().next().unwrap()).unwrap();
    py_ok(&["verify-dsse", &public, envelope.to_str().unwrap()]);
    if has_referrers {
        // An OCI 1.1 attestation referrer has the in-toto artifactType,
        // as cosign's WriteAttestationsReferrer writes it.
        ok_pw(
            &kiln,
            &[
                "attest",
                "--remote",
                "--registry-referrers-mode",
                "oci-1-1",
                "--key",
                &key,
                "--type",
                "openvex",
                "--predicate",
                predicate.to_str().unwrap(),
                &name,
            ],
        );
        let idx = registry_get(host, &format!("app/referrers/{digest}"), None);
        assert!(
            idx["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["artifactType"] == "application/vnd.in-toto+json"),
            "{idx}"
        );
        let (out, _) = ok_pw(
            &kiln,
            &[
                "verify-attestation",
                "--remote",
                "--key",
                &public,
                "--type",
                "openvex",
                &name,
            ],
        );
        assert_eq!(out.lines().count(), 1, "{out}");
    }
}

/// The registry's digest of NAME, read from the registry as a client would.
fn manifest_digest_unsigned(kiln: &Kiln, name: &str) -> String {
    let (repo_host, tag) = name.rsplit_once(':').unwrap();
    let (host, repo) = repo_host.split_once('/').unwrap();
    let out = Command::new("curl")
        .args([
            "-sfI",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{host}/v2/{repo}/manifests/{tag}"))
        .output()
        .unwrap();
    let _ = kiln;
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .unwrap()
}

#[test]
fn signatures_on_the_distribution_registry_use_cosign_tags() {
    let reg = Registry::start(Auth::Anonymous);
    registry_round(&reg.host(), false);
}

#[test]
fn signatures_on_kiln_serve_use_referrers_when_asked() {
    let serve = Serve::start();
    registry_round(&serve.host, true);
}

#[test]
fn push_carries_store_signatures_and_pull_policy_keeps_them() {
    let reg = Registry::start(Auth::Anonymous);
    let host = reg.host();
    let builder = Kiln::new();
    let (key, public) = kiln_keys(&builder, "k");
    let signed = push_image(&builder, &host, "signed", b"s");
    let unsigned = push_image(&builder, &host, "unsigned", b"u");

    // A store that pulled the image signs it locally; push carries the
    // signature to the registry (same manifest digest: nothing recompressed).
    let signer = Kiln::new();
    signer.ok(&["pull", "-q", &signed]);
    ok_pw(&signer, &["sign", "--key", &key, &signed]);
    let out = kiln_pw(&signer, &["push", &signed]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("Pushed 1 signature"),
        "{err}"
    );
    ok_pw(&builder, &["verify", "--remote", "--key", &public, &signed]);
    // A built image's signature names the store's digest, which a push
    // that compresses layers stored plain would change: a signed image goes
    // as stored, and its signature with it.
    let local = format!("{host}/local:v1");
    builder.import_busybox(&local, &[("l", b"l")], &[]);
    ok_pw(&builder, &["sign", "--key", &key, &local]);
    let out = kiln_pw(&builder, &["push", &local]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && err.contains("pushing its layers as stored")
            && err.contains("Pushed 1 signature"),
        "{err}"
    );
    let fresh = Kiln::new();
    ok_pw(&fresh, &["verify", "--remote", "--key", &public, &local]);
    // Asking for compression compresses, and says the signature stays behind.
    let zipped = format!("{host}/local:gz");
    builder.ok(&["tag", &local, &zipped]);
    let out = kiln_pw(&builder, &["push", "--compression", "gzip", &zipped]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && err.contains("WARNING: not pushed")
            && err.contains("kiln sign --key KEY"),
        "{err}"
    );

    // pull --verify-key: unsigned refused before anything is stored.
    let user = Kiln::new();
    let out = user.run(&["pull", "--verify-key", &public, &unsigned]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signatures found"));
    assert!(!user.ok(&["images"]).contains("unsigned"));
    user.ok(&["pull", "--verify-key", &public, &signed]);

    // A policy file: signed scope needs the key, the rest is rejected.
    let policy = user.path("policy.json");
    std::fs::write(
        &policy,
        format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"{host}/signed":[{{"type":"sigstoreSigned","keyPath":"{public}"}}],"{host}/unsigned":[{{"type":"insecureAcceptAnything"}}]}}}}}}"#
        ),
    )
    .unwrap();
    user.ok(&[
        "pull",
        "--signature-policy",
        policy.to_str().unwrap(),
        &unsigned,
    ]);
    drop(reg);

    // run/create check the signatures kept in the store: offline now.
    user.import_busybox("plain:v1", &[], &[]);
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--verify-key",
        &public,
        &signed,
        "echo",
        "trusted",
    ]);
    assert_eq!(out, "trusted\n");
    for (image, flags, why) in [
        (
            "plain:v1",
            vec!["--verify-key", &public],
            "no signatures found",
        ),
        (
            "plain:v1",
            vec!["--signature-policy", policy.to_str().unwrap()],
            "rejected by the signature policy",
        ),
    ] {
        for cmd in ["run", "create"] {
            let mut args = vec![cmd, "--rm", "--network", "none"];
            args.extend(flags.iter().copied());
            args.extend([image, "true"]);
            let out = user.run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{args:?}: {err}");
            assert!(err.contains(why), "{args:?}: {err}");
        }
    }
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--signature-policy",
        policy.to_str().unwrap(),
        &unsigned,
        "echo",
        "accepted",
    ]);
    assert_eq!(out, "accepted\n");
}

#[test]
fn build_provenance_is_a_verifiable_slsa_attestation() {
    let kiln = Kiln::new();
    let (key, public) = kiln_keys(&kiln, "k");
    kiln.import_busybox("base:v1", &[], &[]);
    let ctx = kiln.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:v1\nARG FLAVOR\nCOPY f /f\n",
    )
    .unwrap();
    std::fs::write(ctx.join("f"), "hello").unwrap();
    let ctx_s = ctx.to_str().unwrap();
    ok_pw(
        &kiln,
        &[
            "build",
            "-q",
            "--provenance",
            "--provenance-key",
            &key,
            "--build-arg",
            "FLAVOR=mint",
            "-t",
            "built:v1",
            ctx_s,
        ],
    );
    let (out, _) = ok_pw(
        &kiln,
        &[
            "verify-attestation",
            "--key",
            &public,
            "--type",
            "slsaprovenance",
            "built:v1",
        ],
    );
    let env = json(out.lines().next().unwrap().as_bytes());
    use base64::Engine;
    let st = json(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    );
    let p = &st["predicate"];
    assert_eq!(p["invocation"]["parameters"]["args"]["FLAVOR"], "mint");
    // The material is the base image at the digest the store holds it by.
    let m = &p["materials"][0];
    assert_eq!(m["uri"], "pkg:docker/base:v1");
    let hex = m["digest"]["sha256"].as_str().unwrap();
    assert!(
        kiln.root.join("blobs/sha256").join(hex).exists(),
        "material {hex} is no manifest in the store"
    );
    let ctx_digest = p["invocation"]["configSource"]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    // The same context gives the same digest; a changed file another.
    ok_pw(
        &kiln,
        &[
            "build",
            "-q",
            "--provenance",
            "--provenance-key",
            &key,
            "-t",
            "built:v2",
            ctx_s,
        ],
    );
    std::fs::write(ctx.join("f"), "changed").unwrap();
    ok_pw(
        &kiln,
        &[
            "build",
            "-q",
            "--provenance",
            "--provenance-key",
            &key,
            "-t",
            "built:v3",
            ctx_s,
        ],
    );
    let digest_of = |image: &str| {
        let (out, _) = ok_pw(
            &kiln,
            &[
                "verify-attestation",
                "--key",
                &public,
                "--type",
                "slsaprovenance",
                image,
            ],
        );
        let env = json(out.lines().next().unwrap().as_bytes());
        let st = json(
            &base64::engine::general_purpose::STANDARD
                .decode(env["payload"].as_str().unwrap())
                .unwrap(),
        );
        st["predicate"]["invocation"]["configSource"]["digest"]["sha256"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest_of("built:v2"), ctx_digest);
    assert_ne!(digest_of("built:v3"), ctx_digest);
}

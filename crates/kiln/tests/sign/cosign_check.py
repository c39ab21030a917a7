#!/usr/bin/env python3
"""An independent cosign key and signature checker for kiln's tests.

It does what cosign's Go code does (sigstore/sigstore's cryptoutils and
go-securesystemslib's `encrypted` package for keys; cosign's
pkg/signature and pkg/cosign for signatures), with PyPI `cryptography`
and `pynacl` and no kiln code:

  decrypt KEY PASSWORD            print the PKIX public key PEM of a cosign key
  verify PUB PAYLOAD SIG_B64      exit 0 if SIG is PUB's ECDSA-SHA256 signature of PAYLOAD
  verify-dsse PUB ENVELOPE        exit 0 if the DSSE envelope's signature (over the PAE) is PUB's
  make-key PREFIX PASSWORD        write PREFIX.key (cosign's encrypted format) and PREFIX.pub
  sign-push KEY PASSWORD REGISTRY REPO DIGEST [TAMPER]
                                  sign DIGEST as cosign does and push the signature under
                                  cosign's sha256-<hex>.sig tag over plain HTTP;
                                  TAMPER = payload|signature breaks one on purpose
  keyid PUB                       print sha256:<hex> of the key's PKIX DER
"""
import base64
import hashlib
import json
import os
import sys
import urllib.request

import nacl.pwhash
import nacl.secret
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


def pem_body(text, labels):
    for label in labels:
        begin = f"-----BEGIN {label}-----"
        if begin in text:
            body = text.split(begin, 1)[1].split(f"-----END {label}-----", 1)[0]
            return base64.b64decode("".join(body.split()))
    raise SystemExit(f"no PEM block {labels}")


def decrypt(path, password):
    doc = json.loads(pem_body(open(path).read(), LABELS))
    assert doc["kdf"]["name"] == "scrypt", doc["kdf"]
    assert doc["cipher"]["name"] == "nacl/secretbox", doc["cipher"]
    p = doc["kdf"]["params"]
    key = hashlib.scrypt(password.encode(), salt=base64.b64decode(doc["kdf"]["salt"]),
                         n=p["N"], r=p["r"], p=p["p"], maxmem=2**31 - 1, dklen=32)
    box = nacl.secret.SecretBox(key)
    der = box.decrypt(base64.b64decode(doc["ciphertext"]), base64.b64decode(doc["cipher"]["nonce"]))
    return serialization.load_der_private_key(der, password=None)


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_pub(path):
    return serialization.load_pem_public_key(open(path, "rb").read())


def ok(pub, message, sig):
    try:
        pub.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def pae(kind, body):
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind.encode(), len(body), body)


def go_json_string(s):
    # encoding/json's HTML-safe escaping, as cosign's payload has it.
    out = json.dumps(s, ensure_ascii=False)
    # (Python, like Go >= 1.22, writes \b and \f as short escapes.)
    for c, e in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        out = out.replace(c, e)
    return out


def payload(docker_ref, digest):
    return ('{"critical":{"identity":{"docker-reference":%s},"image":{"docker-manifest-digest":%s},'
            '"type":"cosign container image signature"},"optional":null}'
            % (go_json_string(docker_ref), go_json_string(digest))).encode()


def push_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(req) as r:
        loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    req = urllib.request.Request(f"{loc}{sep}digest={digest}", method="PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).close()
    return {"mediaType": "", "digest": digest, "size": len(data)}


def sign_push(keyfile, password, registry, repo, digest, tamper=None):
    key = decrypt(keyfile, password)
    body = payload(f"{registry}/{repo}", digest)
    sig = key.sign(body, ec.ECDSA(hashes.SHA256()))
    if tamper == "payload":
        body = body.replace(b"cosign container image signature", b"cosign container image signaturE")
    if tamper == "signature":
        sig = key.sign(b"something else", ec.ECDSA(hashes.SHA256()))
    base = f"http://{registry}"
    layer = push_blob(base, repo, body)
    layer["mediaType"] = "application/vnd.dev.cosign.simplesigning.v1+json"
    layer["annotations"] = {"dev.cosignproject.cosign/signature": base64.b64encode(sig).decode()}
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
    cfg = push_blob(base, repo, config)
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cfg, "layers": [layer]}).encode()
    tag = digest.replace(":", "-") + ".sig"
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    urllib.request.urlopen(req).close()


def main(argv):
    cmd = argv[1]
    if cmd == "decrypt":
        print(public_pem(decrypt(argv[2], argv[3])), end="")
    elif cmd == "verify":
        message = open(argv[3], "rb").read()
        sys.exit(0 if ok(load_pub(argv[2]), message, base64.b64decode(argv[4])) else 1)
    elif cmd == "verify-dsse":
        env = json.loads(open(argv[3]).read())
        body = base64.b64decode(env["payload"])
        good = any(ok(load_pub(argv[2]), pae(env["payloadType"], body), base64.b64decode(s["sig"]))
                   for s in env["signatures"])
        sys.exit(0 if good else 1)
    elif cmd == "make-key":
        # What cosign's generate-key-pair writes: scrypt (N=2^16, r=8,
        # p=1, 32-byte salt) and secretbox over the PKCS#8 DER.
        key = ec.generate_private_key(ec.SECP256R1())
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        salt = os.urandom(32)
        k = hashlib.scrypt(argv[3].encode(), salt=salt, n=65536, r=8, p=1, maxmem=2**31 - 1, dklen=32)
        nonce = os.urandom(24)
        ct = nacl.secret.SecretBox(k).encrypt(der, nonce).ciphertext
        doc = {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1},
                       "salt": base64.b64encode(salt).decode()},
               "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
               "ciphertext": base64.b64encode(ct).decode()}
        # Go's encoding/json writes no spaces.
        b = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
        lines = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
        label = LABELS[0]
        open(argv[2] + ".key", "w").write(f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n")
        open(argv[2] + ".pub", "w").write(public_pem(key))
    elif cmd == "sign-push":
        sign_push(*argv[2:8])
    elif cmd == "keyid":
        der = load_pub(argv[2]).public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        print("sha256:" + hashlib.sha256(der).hexdigest())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

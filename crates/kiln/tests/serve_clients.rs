//! Real clients against `kiln serve` that serve.rs does not cover: podman
//! push and pull (`--tls-verify=false`), and the Python `oras` package
//! pushing an artifact with a subject and listing the subject's referrers.
//! Both tools must be installed (scripts/setup.sh); a missing one fails the
//! test. All traffic stays on 127.0.0.1; servers and podman images the
//! tests make are removed when they end.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::serve::Serve;
use common::Kiln;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the podman images named when dropped.
struct PodmanImages(Vec<String>);

impl Drop for PodmanImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("podman")
                .args(["rmi", "--force", i])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn podman_pulls_what_kiln_pushed_and_pushes_it_back() {
    let s = Serve::start();
    let k = Kiln::new();
    k.import_busybox("bb", &[("etc/motd", b"podman was here\n")], &[]);
    let src = format!("{}/podman/src:1", s.host);
    let dst = format!("{}/podman/dst:1", s.host);
    let _cleanup = PodmanImages(vec![src.clone(), dst.clone()]);
    k.ok(&["tag", "bb", &src]);
    k.ok(&["push", &src]);
    run("podman", &["pull", "--tls-verify=false", &src]);
    run("podman", &["tag", &src, &dst]);
    run("podman", &["push", "--tls-verify=false", &dst]);
    // Pulled back by kiln: the same root filesystem, the motd intact.
    let p = Kiln::new();
    p.ok(&["pull", &dst]);
    let out = p.ok(&["run", "--rm", &dst, "cat", "/etc/motd"]);
    assert_eq!(out, "podman was here\n");
    assert_eq!(
        p.inspect(&dst)["RootFS"]["Layers"],
        k.inspect("bb")["RootFS"]["Layers"]
    );
}

const ORAS_SCRIPT: &str = r#"
import json, sys, os, oras.client, oras.provider
host, workdir = sys.argv[1], sys.argv[2]
client = oras.client.OrasClient(hostname=host, insecure=True)
os.chdir(workdir)
open("image.txt", "w").write("the subject\n")
open("sig.txt", "w").write("a signature\n")
client.push(target=f"{host}/oras/app:v1", files=["image.txt"])
reg = oras.provider.Registry(hostname=host, insecure=True)
resp = reg.do_request(f"http://{host}/v2/oras/app/manifests/v1", "HEAD",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
digest = resp.headers["Docker-Content-Digest"]
size = int(resp.headers["Content-Length"])
subj = oras.oci.Subject("application/vnd.oci.image.manifest.v1+json", digest, size)
client.push(target=f"{host}/oras/app:sig", files=["sig.txt"], subject=subj,
            manifest_annotations={"org.example.kind": "signature"})
resp = reg.do_request(f"http://{host}/v2/oras/app/referrers/{digest}", "GET")
print(json.dumps({"subject": digest, "referrers": resp.json()}))
"#;

#[test]
fn python_oras_pushes_an_artifact_with_a_subject_and_lists_referrers() {
    let s = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("oras_test.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let out = run(
        "python3",
        &[
            script.to_str().unwrap(),
            &s.host,
            dir.path().to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let referrers = v["referrers"]["manifests"].as_array().unwrap();
    assert_eq!(referrers.len(), 1, "{v}");
    assert_eq!(
        referrers[0]["annotations"]["org.example.kind"], "signature",
        "{v}"
    );
    // The signature is a real manifest naming the subject.
    let sig = referrers[0]["digest"].as_str().unwrap();
    let (code, body) = {
        let r = std::process::Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
                &format!("http://{}/v2/oras/app/manifests/{sig}", s.host),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&r.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    assert_eq!(code, "200");
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["subject"]["digest"], v["subject"]);
}

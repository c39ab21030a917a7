//! End-to-end: `kiln save` / `kiln load` round trips, and archives that are
//! corrupt or hostile: each is refused with a message naming the problem,
//! and the store is left exactly as it was.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;

use common::{busybox_tar, Kiln};
use sha2::{Digest as _, Sha256};

fn entries(archive: &Path) -> Vec<(String, tar::EntryType, Vec<u8>, String)> {
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let kind = e.header().entry_type();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).unwrap())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, kind, data, link)
        })
        .collect()
}

/// Writes entries with raw names (tar::Builder would refuse hostile ones).
fn write_entries(path: &Path, entries: &[(String, tar::EntryType, Vec<u8>, String)]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

fn hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

/// A store with one image and its saved archive.
fn saved() -> (Kiln, std::path::PathBuf) {
    let k = Kiln::new();
    k.import_busybox("app:1", &[], &["-c", "CMD [\"sh\"]"]);
    let out = k.path("app.tar");
    k.ok(&["save", "-o", out.to_str().unwrap(), "app:1"]);
    (k, out)
}

#[test]
fn save_then_load_into_another_store() {
    let (k, archive) = saved();
    let id = k.inspect("app:1")["Id"].clone();
    let other = Kiln::new();
    let out = other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: app:1");
    assert_eq!(other.inspect("app:1")["Id"], id);
    assert_eq!(
        other.inspect("app:1")["Descriptor"],
        k.inspect("app:1")["Descriptor"]
    );
    other.ok(&["system", "check"]);

    // From standard input, and a second load is harmless.
    other.ok_with_stdin(&["load"], &archive);
    assert_eq!(other.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn loads_compressed_archives() {
    let (k, archive) = saved();
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        let packed = k.path(&format!("app.tar.{ext}"));
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{tool} -c {} > {}",
                archive.display(),
                packed.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
        let other = Kiln::new();
        assert_eq!(
            other.ok(&["load", "-i", packed.to_str().unwrap()]).trim(),
            "Loaded image: app:1"
        );
        assert_eq!(other.inspect("app:1")["Id"], k.inspect("app:1")["Id"]);
    }
}

#[test]
fn save_is_deterministic_and_holds_both_formats() {
    let (k, archive) = saved();
    let again = k.path("again.tar");
    // To standard output this time.
    let out = k.cmd().args(["save", "app:1"]).output().unwrap();
    assert!(out.status.success());
    fs::write(&again, &out.stdout).unwrap();
    assert_eq!(fs::read(&archive).unwrap(), fs::read(&again).unwrap());

    let names: Vec<String> = entries(&archive).into_iter().map(|e| e.0).collect();
    for want in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
    // Every blob is named by its digest.
    for (name, _, data, _) in entries(&archive) {
        if let Some(h) = name.strip_prefix("blobs/sha256/") {
            if !h.is_empty() {
                assert_eq!(h, hex(&data));
            }
        }
    }
    // Saving by ID writes no names; loading gives an untagged image.
    let id = k.inspect("app:1")["Id"].as_str().unwrap().to_string();
    let by_id = k.path("byid.tar");
    k.ok(&["save", "-o", by_id.to_str().unwrap(), &id[7..19]]);
    let other = Kiln::new();
    assert_eq!(
        other.ok(&["load", "-i", by_id.to_str().unwrap()]).trim(),
        format!("Loaded image ID: {id}")
    );
}

#[test]
fn save_several_images_sharing_a_layer() {
    let k = Kiln::new();
    let tar = busybox_tar(k.dir.path(), "base", &[]);
    k.ok(&["import", tar.to_str().unwrap(), "a", "-m", "a"]);
    k.ok(&["import", tar.to_str().unwrap(), "b", "-m", "b"]);
    let out = k.path("ab.tar");
    k.ok(&["save", "-o", out.to_str().unwrap(), "a", "b"]);
    let blobs = entries(&out)
        .iter()
        .filter(|e| e.0.starts_with("blobs/sha256/") && e.0.len() > 14)
        .count();
    assert_eq!(blobs, 5, "one shared layer + 2 configs + 2 manifests");
    let other = Kiln::new();
    let loaded = other.ok(&["load", "-i", out.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: a:latest") && loaded.contains("Loaded image: b:latest"));
}

fn refused(mutate: impl FnOnce(&mut Vec<(String, tar::EntryType, Vec<u8>, String)>), expect: &str) {
    let (k, archive) = saved();
    let mut e = entries(&archive);
    mutate(&mut e);
    let bad = k.path("bad.tar");
    write_entries(&bad, &e);
    let target = Kiln::new();
    target.ok(&["images"]); // create the store
    let tar = busybox_tar(target.dir.path(), "other", &[("x", b"1")]);
    target.ok(&["import", tar.to_str().unwrap(), "existing"]);
    let before = target.snapshot();
    let err = target.fails(&["load", "-i", bad.to_str().unwrap()]);
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_eq!(
        target.snapshot(),
        before,
        "a refused load changed the store"
    );
    target.ok(&["system", "check"]);
}

fn layer_index(e: &[(String, tar::EntryType, Vec<u8>, String)]) -> usize {
    e.iter().position(|x| x.2.len() > 100_000).unwrap()
}

#[test]
fn refuses_corrupt_blob() {
    refused(
        |e| {
            let i = layer_index(e);
            let n = e[i].2.len();
            e[i].2[n / 2] ^= 0xff;
        },
        "hashes to",
    );
}

#[test]
fn refuses_missing_blob() {
    refused(
        |e| {
            let i = layer_index(e);
            e.remove(i);
        },
        "missing",
    );
}

#[test]
fn refuses_bad_json() {
    refused(
        |e| {
            for x in e
                .iter_mut()
                .filter(|x| x.0 == "index.json" || x.0 == "manifest.json")
            {
                x.2 = b"{not json".to_vec();
            }
        },
        ".json is not valid",
    );
}

#[test]
fn refuses_path_traversal() {
    let (k, _) = saved();
    let marker = k.dir.path().join("escaped");
    refused(
        |e| {
            e.insert(
                0,
                (
                    "../../../../../../../../tmp/kiln-escape-test".into(),
                    tar::EntryType::Regular,
                    b"x".to_vec(),
                    String::new(),
                ),
            );
        },
        "climbs out",
    );
    assert!(!Path::new("/tmp/kiln-escape-test").exists());
    assert!(!marker.exists());
}

#[test]
fn refuses_symlink_out_of_the_archive() {
    refused(
        |e| {
            let i = layer_index(e);
            let name = e[i].0.clone();
            e[i] = (
                name,
                tar::EntryType::Symlink,
                Vec::new(),
                "../../../../etc/passwd".into(),
            );
        },
        "climbs out",
    );
}

#[test]
fn refuses_truncated_archive() {
    let (k, archive) = saved();
    let data = fs::read(&archive).unwrap();
    let cut = k.path("cut.tar");
    fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let target = Kiln::new();
    target.ok(&["images"]);
    let before = target.snapshot();
    let err = target.fails(&["load", "-i", cut.to_str().unwrap()]);
    assert!(err.contains("load"), "{err}");
    assert_eq!(target.snapshot(), before);
}

#[test]
fn refuses_non_archives() {
    let target = Kiln::new();
    let junk = target.path("junk");
    fs::write(&junk, vec![9u8; 4096]).unwrap();
    assert!(target
        .fails(&["load", "-i", junk.to_str().unwrap()])
        .contains("not a readable tar archive"));
    refused(
        |e| e.retain(|x| x.0 != "index.json" && x.0 != "manifest.json"),
        "not an image archive",
    );
}

/// A docker legacy archive whose layer does not match the config's diff_id.
#[test]
fn refuses_layer_not_matching_diff_id() {
    refused(
        |e| {
            // Rewrite as a legacy archive (manifest.json only) with a layer
            // that is a valid tar but not the one the config lists.
            let i = layer_index(e);
            let mut other = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_path("different").unwrap();
            h.set_size(3);
            h.set_cksum();
            other.append(&h, &b"abc"[..]).unwrap();
            let other = other.into_inner().unwrap();
            let old_name = e[i].0.clone();
            let new_name = format!("blobs/sha256/{}", hex(&other));
            e[i] = (
                new_name.clone(),
                tar::EntryType::Regular,
                other,
                String::new(),
            );
            e.retain(|x| x.0 != "index.json");
            for x in e.iter_mut().filter(|x| x.0 == "manifest.json") {
                x.2 = String::from_utf8(x.2.clone())
                    .unwrap()
                    .replace(&old_name, &new_name)
                    .into_bytes();
            }
        },
        "does not match the image config",
    );
}

#[test]
fn refuses_config_not_matching_its_name() {
    refused(
        |e| {
            e.retain(|x| x.0 != "index.json");
            let manifest = e.iter().find(|x| x.0 == "manifest.json").unwrap().2.clone();
            let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            let config = m[0]["Config"].as_str().unwrap().to_string();
            for x in e.iter_mut().filter(|x| x.0 == config) {
                x.2 = String::from_utf8(x.2.clone())
                    .unwrap()
                    .replace("\"sh\"", "\"ls\"")
                    .into_bytes();
            }
        },
        "hashes to",
    );
}

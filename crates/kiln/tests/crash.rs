//! A kiln process killed with SIGKILL at any moment of an import or a load
//! leaves the store consistent: `kiln system check` passes (every blob
//! matches its digest, every tag's whole graph is present) and a tag exists
//! only for a complete image.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::Kiln;

/// A tar of `mib` MiB of incompressible data in a few files, so that
/// compression takes long enough to be interrupted at many points.
fn big_tar(path: &Path, mib: usize) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for f in 0..4 {
        let mut data = Vec::with_capacity(mib << 18);
        for _ in 0..(mib << 15) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("data/file{f}")).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// Kills `args` after each delay, then checks the store. Returns how many
/// runs were really interrupted (killed before finishing).
fn kill_at_intervals(
    k: &Kiln,
    args: impl Fn(usize) -> Vec<String>,
    tag: impl Fn(usize) -> String,
) -> usize {
    let delays = [5u64, 30, 80, 150, 250, 400, 600, 900, 1300, 1800];
    let mut interrupted = 0;
    for (i, ms) in delays.iter().enumerate() {
        let mut child = k
            .cmd()
            .args(args(i))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            interrupted += 1;
        }
        let check = k.run(&["system", "check"]);
        assert!(
            check.status.success(),
            "store inconsistent after kill at {ms} ms: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        // A tag exists only for a complete image: inspect and history work.
        if !k.ok(&["images", "-q", &tag(i)]).is_empty() {
            k.ok(&["inspect", &tag(i)]);
            k.ok(&["history", &tag(i)]);
        }
        // Nothing partial is visible under blobs/: every file there is
        // named by its content (check verified it) and ingest holds the rest.
        for entry in fs::read_dir(k.root.join("blobs/sha256")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert_eq!(name.len(), 64, "unexpected file in blobs: {name}");
        }
    }
    // The pruner removes what the killed writers left behind.
    k.ok(&["image", "prune", "-f"]);
    let check = k.ok(&["system", "check"]);
    assert!(!check.contains("abandoned"), "{check}");
    interrupted
}

#[test]
fn sigkill_during_import_and_load_leaves_store_consistent() {
    let k = Kiln::new();
    let big = k.path("big.tar");
    big_tar(&big, 48);
    let big_s = big.to_str().unwrap().to_string();

    let interrupted = kill_at_intervals(
        &k,
        // gzip: slow enough to be caught in every phase, and it runs the
        // compressor thread.
        |i| {
            let args = [
                "import",
                &big_s,
                &format!("big:{i}"),
                "--compression",
                "gzip",
            ];
            args.iter().map(|s| s.to_string()).collect()
        },
        |i| format!("big:{i}"),
    );
    assert!(
        interrupted >= 4,
        "only {interrupted} imports were interrupted: the test proves little"
    );

    // Make an archive to load, then kill loads into a second store.
    k.ok(&["import", &big_s, "whole:1", "--compression", "none"]);
    let archive = k.path("whole.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "whole:1"]);
    let target = Kiln::new();
    let archive_s = archive.to_str().unwrap().to_string();
    let interrupted = kill_at_intervals(
        &target,
        |_| vec!["load".into(), "-i".into(), archive_s.clone()],
        |_| "whole:1".to_string(),
    );
    assert!(
        interrupted >= 2,
        "only {interrupted} loads were interrupted"
    );
    // And a load that is left alone completes.
    target.ok(&["load", "-i", &archive_s]);
    target.ok(&["system", "check"]);
    assert_eq!(target.inspect("whole:1")["Id"], k.inspect("whole:1")["Id"]);
}

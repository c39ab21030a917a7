//! Any bytes as a layer: apply must not panic, and must never create,
//! change or remove anything outside the root it applies to.
#![no_main]

use std::fs;

use kiln_layer::{apply, ApplyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("canary"), b"untouched").expect("canary");
    // Both unpack modes: merged (whiteouts remove) and overlay layer dirs
    // (whiteouts become devices and xattrs), chosen by the input's length.
    let opts = ApplyOptions {
        ownership: false,
        devices: false,
        overlay_whiteouts: data.len() % 2 == 1,
        diff_id: true,
    };
    let _ = apply(data, &root, &opts);
    let mut top: Vec<_> = fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    top.sort();
    assert_eq!(top, ["outside", "root"], "something was created beside the root");
    let inside: Vec<_> = fs::read_dir(&outside).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(inside, ["canary"], "something was created outside the root");
    assert_eq!(fs::read(outside.join("canary")).expect("canary"), b"untouched");
});

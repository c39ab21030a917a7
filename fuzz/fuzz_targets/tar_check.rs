//! Any bytes through the checked tar copy (import's path): no panic, and
//! on success every byte is passed through unchanged.
#![no_main]

use kiln_layer::copy_checked_tar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if let Ok(summary) = copy_checked_tar(data, &mut out) {
        assert_eq!(out, data);
        assert_eq!(summary.bytes, data.len() as u64);
    }
});

//! What every kiln binary that opens a store does at start: find the
//! store's root and set up logging. Shared with `kiln-serve` (which
//! includes this file) so both read the same defaults.

use std::path::PathBuf;

pub(crate) fn default_root() -> PathBuf {
    // Root's store is system-wide; anyone else's lives in their data dir.
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if is_root {
        return PathBuf::from("/var/lib/kiln");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("kiln")
}

pub(crate) fn init_logging(verbose: u8, level: Option<&str>) {
    let level = level.map(str::to_string).unwrap_or_else(|| {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
        .to_string()
    });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

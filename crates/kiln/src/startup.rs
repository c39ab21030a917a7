//! What every kiln binary that opens a store does at start: find the
//! store's root and set up logging. Shared with `kiln-serve` (which
//! includes this file) so both read the same defaults.

use std::path::PathBuf;

/// The options every kiln binary takes before its command (`kiln-serve`
/// parses kiln's own command line again, so both define them here).
#[derive(clap::Args)]
pub(crate) struct GlobalArgs {
    /// Store root [env: KILN_ROOT] [default: /var/lib/kiln as root, else
    /// $XDG_DATA_HOME/kiln]
    // KILN_ROOT is read in `init`, not by clap's `env`: clap counts an
    // argument set from the environment as given and prints
    // `--root <DIR>` in every usage line of an error.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG also works
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log level: error, warn, info, debug, trace
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

impl GlobalArgs {
    /// Sets up logging and returns the store's root: `--root`, else
    /// `KILN_ROOT`, else the default; made absolute, because container
    /// monitors, runtimes and bundles use the store's paths from other
    /// working directories.
    pub(crate) fn init(self) -> PathBuf {
        init_logging(self.verbose, self.log_level.as_deref());
        let root = self
            .root
            .or_else(|| {
                std::env::var_os("KILN_ROOT")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(default_root);
        std::path::absolute(&root).unwrap_or(root)
    }
}

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

fn init_logging(verbose: u8, level: Option<&str>) {
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

//! `kiln serve`: the registry server (`kiln_registry`) runs as the lean
//! `kiln-serve` binary beside `kiln`, which links only what serving needs
//! (an idle server's memory is mostly the code pages it maps: issue 15's
//! 10 MB goal). `kiln` parses and checks the command line and the config
//! file as before, so usage errors and bad configs are reported the same
//! way, then execs `kiln-serve` with the same arguments and the store
//! root it resolved (`KILN_ROOT`). The flags and the server live in
//! `kiln_registry::cli` and `src/bin/kiln-serve/`.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub(crate) use kiln_registry::cli::ServeArgs as Args;

/// The lean server's file name, looked for next to the running `kiln`.
const SERVE_BIN: &str = "kiln-serve";

pub(crate) fn run(root: &Path, argv: &[String], args: Args) -> anyhow::Result<ExitCode> {
    // Checked here too so a bad file or flag combination is reported before
    // anything is exec'd (kiln-serve checks again; the result is the same).
    if args.command.is_none() {
        args.config().map_err(anyhow::Error::from_boxed)?;
    }
    let exe = std::env::current_exe().context("find the kiln executable")?;
    let serve = exe.with_file_name(SERVE_BIN);
    if !serve.is_file() {
        anyhow::bail!(
            "{} is missing: `kiln serve` runs it, and it is installed next to kiln (build it with `cargo build -p kiln`, or copy it beside {})",
            serve.display(),
            exe.display()
        );
    }
    let err = std::process::Command::new(&serve)
        .arg0(argv.first().map(String::as_str).unwrap_or("kiln"))
        .args(argv.iter().skip(1))
        .env("KILN_ROOT", root)
        .exec();
    Err(err).with_context(|| format!("run {}", serve.display()))
}

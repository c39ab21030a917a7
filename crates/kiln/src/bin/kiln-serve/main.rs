//! `kiln-serve`: the lean registry server `kiln serve` execs (see
//! `commands/serve.rs`). It links kiln-registry, its config and TLS, and
//! none of kiln's build, sign, scan or container code, so an idle server
//! maps and faults in far less code. It takes kiln's own command line
//! (`kiln [--root DIR] [-v] serve ...`, arguments defined once in
//! `kiln_registry::cli`) and kiln's resolved store root in `KILN_ROOT`,
//! and reports errors as kiln does ("Error: ...", exit 1; usage errors
//! 125).

#[path = "../../memory.rs"]
mod memory;
mod serve;
#[path = "../../startup.rs"]
mod startup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// kiln's global options and its `serve` command; kiln has parsed the same
// argv with the same definitions before exec'ing this binary.
#[derive(Parser)]
#[command(name = "kiln", version)]
struct Cli {
    #[command(flatten)]
    global: startup::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a registry (OCI distribution API) from <root>/registry
    Serve(kiln_registry::cli::ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(125)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let root = cli.global.init();
    let Command::Serve(args) = cli.command;
    match serve::run(&root, args) {
        Ok(code) => code,
        Err(e) => {
            let e: &(dyn std::error::Error + 'static) = e.as_ref();
            eprintln!("Error: {}", kiln_core::error_chain(e));
            ExitCode::FAILURE
        }
    }
}

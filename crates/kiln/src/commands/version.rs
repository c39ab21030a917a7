//! `kiln version`: the client's version, where its store is, and the
//! container runtimes it can use.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use crate::format::OutputFormat;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Output: text (default), json, or a Go template ('{{.Client.Version}}',
    /// '{{.Store.Root}}', '{{range .Runtimes}}{{.Name}} {{end}}')
    #[arg(short = 'f', long, value_name = "FORMAT")]
    format: Option<String>,
}

/// The first executable `name` on `path` (a `PATH`-style list).
fn find_on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `path` is the `PATH` value: the binary reads the environment and passes
/// it in.
pub(crate) fn run(
    root: &Path,
    path: Option<&std::ffi::OsStr>,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let host = kiln_core::Platform::host();
    let mut runtimes = vec![json!({"Name": "libcontainer", "Path": "builtin", "Default": true})];
    if let Some(runc) = find_on_path("runc", path) {
        runtimes
            .push(json!({"Name": "runc", "Path": runc.display().to_string(), "Default": false}));
    }
    let doc = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": host.os,
            "Arch": host.architecture,
        },
        "Store": {"Root": root.display().to_string()},
        "Runtimes": runtimes,
    });
    match args.format.as_deref() {
        None | Some("") => {
            let names: Vec<String> = runtimes
                .iter()
                .map(|r| {
                    format!(
                        "{} ({})",
                        r["Name"].as_str().unwrap_or(""),
                        r["Path"].as_str().unwrap_or("")
                    )
                })
                .collect();
            println!("Client:");
            println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
            println!(" OS/Arch:           {}/{}", host.os, host.architecture);
            println!(" Store:             {}", root.display());
            println!(" Runtimes:          {}", names.join(", "));
        }
        Some(f) => {
            let format = OutputFormat::parse(Some(f), "{{json .}}")?;
            let item = kiln_template::Value::from_json(&doc);
            print!(
                "{}",
                format.render(&[item], std::slice::from_ref(&doc), &[])?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

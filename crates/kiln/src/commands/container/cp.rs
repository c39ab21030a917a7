//! `kiln cp`: files between a container and the host (either way), or a
//! tar stream on stdin/stdout with `-`; docker's argument forms and rules
//! (see `kiln_container::cp`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use kiln_container::cp::{CopyDest, CopySource};
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// CONTAINER:SRC_PATH, a local path, or - (a tar stream on stdin)
    src: String,
    /// CONTAINER:DEST_PATH, a local path, or - (a tar stream to stdout)
    dest: String,
}

/// One side of the copy, as docker's splitCpArg reads it: a path that
/// starts with `/` or `.` is local whatever colons it has; otherwise
/// `NAME:PATH` names a container.
enum Side {
    Local(String),
    Container(String, String),
}

fn side(arg: &str) -> Side {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Side::Container(c.to_string(), p.to_string()),
        _ => Side::Local(arg.to_string()),
    }
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    match (side(&args.src), side(&args.dest)) {
        (Side::Container(..), Side::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (Side::Local(_), Side::Local(_)) => {
            bail!("must specify at least one container source")
        }
        (Side::Container(c, path), Side::Local(dest)) => {
            let dest = if dest == "-" {
                CopyDest::Tar(Box::new(crate::commands::stdout_file()?))
            } else {
                CopyDest::Host(PathBuf::from(dest))
            };
            engine.copy_from(&c, &path, dest, args.follow_link)?;
        }
        (Side::Local(src), Side::Container(c, path)) => {
            let src = if src == "-" {
                CopySource::Tar(Box::new(crate::commands::stdin_file()?))
            } else {
                CopySource::Host(PathBuf::from(src))
            };
            engine.copy_into(&c, src, &path, args.archive, args.follow_link)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

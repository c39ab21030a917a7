use std::fs::File;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context};
use kiln_archive::{created_timestamp, import, ImportOptions};
use kiln_core::Platform;
use kiln_layer::Compression;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Root filesystem tarball (plain, gzip or zstd), or - for standard input
    file: String,
    /// Name for the new image: REPOSITORY[:TAG]
    reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Commit message recorded in the image history
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Platform recorded in the image config (OS/ARCH[/VARIANT])
    #[arg(long, value_parser = clap::value_parser!(Platform))]
    platform: Option<Platform>,
    /// Layer compression in the store: none (default: like docker's local
    /// store, fastest to create and apply; pushing compresses), gzip, zstd
    #[arg(long, default_value = "none", value_parser = clap::value_parser!(Compression))]
    compression: Compression,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    if args.file.starts_with("http://") || args.file.starts_with("https://") {
        bail!("importing from a URL is not supported: download the file, then `kiln import FILE`");
    }
    let names = match &args.reference {
        Some(r) => vec![super::parse_tag_name(r)?],
        None => vec![],
    };
    let input: Box<dyn Read + Send> = if args.file == "-" {
        Box::new(super::stdin_file()?)
    } else {
        Box::new(File::open(&args.file).with_context(|| format!("open {}", args.file))?)
    };
    let opts = ImportOptions {
        names,
        changes: args.changes,
        message: args.message,
        // docker sends a local file's bytes as the request body and records
        // "Imported from -" for it as for stdin; recording the path would make
        // the image ID depend on where the tarball happens to lie.
        source: "-".to_string(),
        platform: args.platform.unwrap_or_else(Platform::host),
        compression: args.compression,
        created: created_timestamp(super::source_date_epoch()?),
    };
    let imported = import(store, input, &opts).with_context(|| format!("import {}", args.file))?;
    println!("{}", imported.id);
    Ok(ExitCode::SUCCESS)
}

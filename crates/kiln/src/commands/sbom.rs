//! `kiln sbom IMAGE`: the image's software bill of materials, as syft
//! prints it (`-o spdx-json|cyclonedx-json|table|json`), plus the layer
//! and Dockerfile step that installed each package (`kiln-sbom`). The
//! image is read where it is: the store, `docker-archive:`,
//! `oci-archive:`, `oci:` or `docker://`, without unpacking.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_analyze::Source;
use kiln_sbom::format::{self, Format, Meta};
use kiln_store::Store;

/// `-o`'s values (syft's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputKind {
    /// SPDX 2.3 JSON
    SpdxJson,
    /// CycloneDX 1.6 JSON
    CyclonedxJson,
    /// A table: name, version, type, layer, step
    Table,
    /// kiln's own JSON (the packages with their layers and steps)
    Json,
}

impl OutputKind {
    fn format(self) -> Format {
        match self {
            OutputKind::SpdxJson => Format::SpdxJson,
            OutputKind::CyclonedxJson => Format::CyclonedxJson,
            OutputKind::Table => Format::Table,
            OutputKind::Json => Format::Json,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Image: a name in the store, docker-archive:PATH, oci-archive:PATH,
    /// oci:DIR[:REF] or docker://REF
    image: String,
    /// Output format
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "table",
        value_name = "FORMAT"
    )]
    output: OutputKind,
    /// Write the SBOM to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

/// Layers read at once (each is decompressed on its own thread).
pub(crate) fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(1)
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let source = Source::parse(&args.image);
    let image = match &source {
        Source::Registry(r) => kiln_analyze::open_registry(args.registry.client()?, r)?,
        s => kiln_analyze::open(s, Some(store))?,
    };
    let sbom = kiln_sbom::catalog(&image, jobs())?;
    let text = format::render(
        &sbom,
        args.output.format(),
        &Meta::now(env!("CARGO_PKG_VERSION")),
    );
    match &args.output_file {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln build --sbom`: catalogs the image just built and attaches the
/// SPDX document to it as an in-toto statement (an artifact referring to
/// the image), dated at the build's timestamp so a rebuild makes the same
/// statement.
pub(crate) fn after_build(
    store: &Store,
    entry: &kiln_store::IndexEntry,
    name: &str,
    epoch: u64,
) -> anyhow::Result<kiln_store::IndexEntry> {
    let statement = statement(store, entry, name, epoch)?;
    Ok(kiln_sbom::attest::attach(store, entry, &statement)?)
}

/// The in-toto SPDX statement about the image `entry` (named `name`),
/// dated `epoch`: attached as a referrer for one platform, put into the
/// index for several (`kiln_build::attestation`).
pub(crate) fn statement(
    store: &Store,
    entry: &kiln_store::IndexEntry,
    name: &str,
    epoch: u64,
) -> anyhow::Result<serde_json::Value> {
    let image = store.load_image(entry)?;
    let source = kiln_analyze::source::from_image(store, name, image)?;
    let sbom = kiln_sbom::catalog(&source, jobs())?;
    let created = kiln_core::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch));
    let meta = Meta {
        created,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let spdx = format::spdx::document(&sbom, &meta);
    Ok(kiln_sbom::attest::statement(name, entry, spdx))
}

//! `kiln scan`: the packages of an image or an SBOM against an OSV
//! database kept offline (osv-scanner's `<Ecosystem>/all.zip` layout,
//! `<root>/vulndb` unless `--db` says otherwise), as grype and
//! osv-scanner do; `--update-db` downloads the database. Exit status: 0,
//! or 1 when `--fail-on LEVEL` is given and a vulnerability at or above
//! it matched (as grype's `--fail-on`), or 1 on an error.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use kiln_vuln::{output, update, Database, Level, Query};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Image in the store to scan
    #[arg(conflicts_with_all = ["sbom", "update_db"])]
    image: Option<String>,
    /// Scan this SBOM instead of an image: CycloneDX or SPDX JSON as syft or kiln write them ("-" reads standard input)
    #[arg(long, value_name = "FILE", conflicts_with = "update_db")]
    sbom: Option<PathBuf>,
    /// OSV database directory, osv-scanner's offline layout (<Ecosystem>/all.zip) [default: <root>/vulndb]
    #[arg(long, value_name = "DIR")]
    db: Option<PathBuf>,
    /// Exit 1 when a vulnerability at or above this severity matches: critical, high, medium or low
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    fail_on: Option<Level>,
    /// Output format: table (grouped by severity), json, or sarif (SARIF 2.1.0)
    #[arg(long, value_enum, default_value = "table")]
    format: ScanFormat,
    /// Download the OSV database into --db (each ecosystem's all.zip) instead of scanning
    #[arg(long)]
    update_db: bool,
    /// With --update-db: an ecosystem to download, repeatable (default: Debian Alpine Ubuntu PyPI npm Go crates.io)
    #[arg(long = "ecosystem", value_name = "ECOSYSTEM", requires = "update_db")]
    ecosystems: Vec<String>,
    /// With --update-db: the OSV bucket's base URL, or a mirror's with the same layout
    #[arg(long, value_name = "URL", default_value = update::DEFAULT_BASE_URL, requires = "update_db")]
    mirror: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScanFormat {
    Table,
    Json,
    Sarif,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}

/// The database directory under kiln's root.
pub(crate) fn default_db(root: &Path) -> PathBuf {
    root.join("vulndb")
}

pub(crate) fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let db_dir = args.db.clone().unwrap_or_else(|| default_db(root));
    if args.update_db {
        return update_db(&db_dir, &args);
    }
    let (queries, skipped, target) = match (&args.sbom, &args.image) {
        (Some(path), _) => {
            let (doc, name) = if path.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("read the SBOM from standard input")?;
                (buf, "-".to_string())
            } else {
                let buf = std::fs::read(path).with_context(|| {
                    format!("read {} (give an SBOM file, or - for standard input)", path.display())
                })?;
                (buf, path.display().to_string())
            };
            let pkgs = kiln_vuln::sbom::read(&doc, &name)?;
            (pkgs.queries, pkgs.skipped, name)
        }
        (None, Some(image)) => (image_queries(root, image)?, Vec::new(), image.clone()),
        (None, None) => anyhow::bail!(
            "nothing to scan: name an image, or give --sbom FILE (or --update-db to download the database)"
        ),
    };
    let db = Database::open(&db_dir)?;
    let mut missing: Vec<&str> = queries
        .iter()
        .map(|q| q.ecosystem.as_str())
        .filter(|e| db.zip_for(e).is_none())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    for e in &missing {
        let base = e.split(':').next().unwrap_or(e);
        eprintln!(
            "Warning: no OSV data for {e} in {} (kiln scan --update-db --ecosystem {base}); its packages were not checked",
            db_dir.display()
        );
    }
    if !skipped.is_empty() {
        eprintln!(
            "Note: {} packages not checked (no version, no OSV ecosystem, or a distro package without its release)",
            skipped.len()
        );
    }
    let index = db.index(&queries)?;
    let findings = kiln_vuln::scan(&index, &queries);
    let doc = match args.format {
        ScanFormat::Table => output::table(&findings, queries.len()),
        ScanFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&output::json(&findings, queries.len()))?
        ),
        ScanFormat::Sarif => format!(
            "{}\n",
            serde_json::to_string_pretty(&output::sarif(&findings, &target))?
        ),
    };
    print!("{doc}");
    Ok(match args.fail_on {
        Some(level) if kiln_vuln::scan::fails(&findings, level) => {
            eprintln!(
                "kiln scan: vulnerabilities at or above {} found (--fail-on)",
                level.as_str()
            );
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

/// The packages of an image (in the store, or an archive or layout as
/// `kiln sbom` takes them), for matching: kiln's own catalogers, each
/// package's purl turned into a query (distro packages carry their source
/// package as `upstream`). A purl with no OSV ecosystem is left out.
fn image_queries(root: &Path, image: &str) -> anyhow::Result<Vec<Query>> {
    let source = kiln_analyze::Source::parse(image);
    if let kiln_analyze::Source::Registry(r) = &source {
        anyhow::bail!(
            "kiln scan reads images in the store and archives; pull {r} first (kiln pull {r})"
        );
    }
    let store = kiln_store::Store::open(root)?;
    let opened = kiln_analyze::open(&source, Some(&store))?;
    let sbom = kiln_sbom::catalog(&opened, super::sbom::jobs())?;
    let distro = sbom
        .distro
        .as_ref()
        .map(|d| format!("{}-{}", d.id, d.version_id));
    Ok(sbom
        .packages
        .iter()
        .filter_map(|p| {
            kiln_vuln::query::Purl::parse(&p.purl)?.to_query(&p.purl, distro.as_deref())
        })
        .collect())
}

fn update_db(dir: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let ecosystems: Vec<String> = if args.ecosystems.is_empty() {
        update::DEFAULT_ECOSYSTEMS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.ecosystems.clone()
    };
    let client = update::client()?;
    for e in &ecosystems {
        let (path, size) =
            super::registry::block_on(update::download(&client, &args.mirror, e, dir))??;
        println!("{e}: {} ({size} bytes)", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

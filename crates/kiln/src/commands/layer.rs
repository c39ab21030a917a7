//! `kiln layer`: the layer engine on its own — make a layer from a
//! directory (or the difference of two), apply one to a directory, list a
//! difference as `docker diff` does. For inspection, scripting and
//! benchmarks; builds and containers use the same engine.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use kiln_core::{Digest, Sha256Writer};
use kiln_layer::{
    apply, diff_overlay, diff_trees, write_layer, ApplyOptions, Compression, TarOptions,
};
use kiln_store::Store;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Write a layer holding DIR (or what changed from --from to DIR)
    Create(CreateArgs),
    /// Apply a layer (plain, gzip or zstd) onto a directory
    Apply(ApplyArgs),
    /// List what changed from LOWER to UPPER (A added, C changed, D deleted)
    Diff(DiffArgs),
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    /// Directory with the content (the upper tree, or an overlay upper dir with --overlay)
    dir: PathBuf,
    /// Lower tree to diff against (default: empty, so DIR is the whole layer)
    #[arg(long, value_name = "LOWER")]
    from: Option<PathBuf>,
    /// DIR is an overlayfs upper directory over --from
    #[arg(long, requires = "from")]
    overlay: bool,
    /// Output file
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// gzip, zstd or none
    #[arg(long, default_value = "gzip", value_parser = clap::value_parser!(Compression))]
    compression: Compression,
}

#[derive(clap::Args)]
pub(crate) struct ApplyArgs {
    /// Layer tarball to apply (plain, gzip or zstd), or the digest (sha256:…) of a layer blob in the store
    layer: PathBuf,
    /// Directory to apply it onto (created if missing; nothing is written outside it)
    dir: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct DiffArgs {
    /// The tree before
    lower: PathBuf,
    /// The tree after (or an overlayfs upper directory with --overlay)
    upper: PathBuf,
    /// UPPER is an overlayfs upper directory
    #[arg(long)]
    overlay: bool,
}

pub(crate) fn run(store: &Store, cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Create(a) => create(a),
        Command::Apply(a) => {
            let (file, known_diff_id) = open_layer(store, &a.layer)?;
            std::fs::create_dir_all(&a.dir)?;
            let opts = ApplyOptions {
                diff_id: known_diff_id.is_none(),
                ..ApplyOptions::for_current_user()
            };
            let r = apply(BufReader::with_capacity(1 << 20, file), &a.dir, &opts)
                .with_context(|| format!("apply {} to {}", a.layer.display(), a.dir.display()))?;
            let diff_id = known_diff_id
                .or(r.diff_id)
                .map(|d| d.to_string())
                .unwrap_or_default();
            println!(
                "applied {} entries ({} whiteouts); diff_id {diff_id}",
                r.entries, r.whiteouts
            );
            if r.skipped_devices > 0 {
                eprintln!(
                    "note: {} device nodes skipped (creating them needs root)",
                    r.skipped_devices
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff(a) => {
            let changes = if a.overlay {
                diff_overlay(&a.lower, &a.upper)?
            } else {
                diff_trees(&a.lower, &a.upper)?
            };
            changes.iter().for_each(|c| println!("{c}"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The layer file `arg` names, and its diff_id when it is known without
/// reading it: an uncompressed blob in the store, whose digest the store
/// verified as it took it in, is its own diff_id (so apply hashes nothing,
/// as an image unpack does not).
fn open_layer(store: &Store, arg: &Path) -> anyhow::Result<(File, Option<Digest>)> {
    let Some(digest) = arg
        .to_str()
        .filter(|s| s.starts_with("sha256:"))
        .map(str::parse::<Digest>)
        .transpose()?
    else {
        let file = File::open(arg).with_context(|| format!("open {}", arg.display()))?;
        return Ok((file, None));
    };
    let file = store.blobs().open(&digest).with_context(|| {
        format!("{digest}: no such blob in the store (see `kiln inspect` for an image's layers)")
    })?;
    let verified = store
        .layer_info(&digest)
        .is_some_and(|info| info.diff_id == digest);
    Ok((file, verified.then_some(digest)))
}

fn create(a: CreateArgs) -> anyhow::Result<ExitCode> {
    let empty = tempfile::tempdir()?;
    let lower = a.from.clone().unwrap_or_else(|| empty.path().to_path_buf());
    let changes = if a.overlay {
        diff_overlay(&lower, &a.dir)?
    } else {
        diff_trees(&lower, &a.dir)?
    };
    let out = File::create(&a.output).with_context(|| format!("create {}", a.output.display()))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let opts = TarOptions {
        clamp_mtime: super::source_date_epoch()?,
    };
    let (layer, digest, size) = if a.compression == Compression::None {
        // Uncompressed, the digest is the diff_id: no second hash.
        let (layer, _) = write_layer(&a.dir, &changes, &opts, a.compression, threads, out)?;
        (layer.clone(), layer.diff_id, layer.uncompressed_size)
    } else {
        let (layer, hashed) = write_layer(
            &a.dir,
            &changes,
            &opts,
            a.compression,
            threads,
            Sha256Writer::new(out),
        )
        .with_context(|| format!("write layer of {}", a.dir.display()))?;
        let (digest, size, _) = hashed.finish();
        (layer, digest, size)
    };
    println!("digest:  {digest} ({size} bytes, {:?})", a.compression);
    println!(
        "diff_id: {} ({} bytes uncompressed, {} changes)",
        layer.diff_id,
        layer.uncompressed_size,
        changes.len()
    );
    Ok(ExitCode::SUCCESS)
}

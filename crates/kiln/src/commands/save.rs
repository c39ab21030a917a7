use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use kiln_archive::{save, ArchiveError, SaveItem};
use kiln_core::ImageRef;
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Images to save: names, IDs or ID prefixes
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file instead of standard output
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let mut items: Vec<SaveItem> = Vec::new();
    for input in &args.images {
        let (record, image) = store.resolve(input)?;
        // Saved under the name given; by ID, without names (as docker does).
        let names: Vec<ImageRef> = match input.parse::<ImageRef>() {
            Ok(n) if record.names.contains(&n) => vec![n],
            _ => vec![],
        };
        match items
            .iter_mut()
            .find(|i| i.image.manifest_digest == image.manifest_digest)
        {
            // The same image named twice is saved once, each name once.
            Some(item) => {
                for n in names {
                    if !item.names.contains(&n) {
                        item.names.push(n);
                    }
                }
            }
            None => items.push(SaveItem { image, names }),
        }
    }
    for item in &items {
        let zstd = item
            .image
            .manifest
            .layers()
            .iter()
            .any(|l| l.media_type.ends_with("zstd"));
        if zstd {
            let what = match item.names.first() {
                Some(n) => n.familiar(),
                None => item.image.id().short().to_string(),
            };
            eprintln!(
                "warning: {what} has zstd-compressed layers: docker before 23.0 cannot load them (skopeo, podman and kiln can)"
            );
        }
    }
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: no half archive on failure.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
                .with_context(|| format!("create a temporary file beside {}", path.display()))?;
            let file = save(store, &items, tmp.reopen()?)?;
            // Temporary files are private (0600); an archive is not.
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
            file.sync_all()?;
            tmp.persist(path)
                .map_err(|e| e.error)
                .with_context(|| format!("write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(ArchiveError::Terminal.into());
            }
            // A File on fd 1 (not the buffered Stdout) lets blob copies use
            // splice/sendfile.
            save(store, &items, super::stdout_file()?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

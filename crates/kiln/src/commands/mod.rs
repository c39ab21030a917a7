//! One module per command. Each has an `Args` (clap) and a `run`.

pub(crate) mod analyze;
pub(crate) mod build;
pub(crate) mod build_cache;
pub(crate) mod build_multi;
pub(crate) mod build_progress;
pub(crate) mod builder;
pub(crate) mod container;
pub(crate) mod copy;
pub(crate) mod dockerfile;
pub(crate) mod history;
pub(crate) mod images;
pub(crate) mod imagetools;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod keys;
pub(crate) mod layer;
pub(crate) mod lint;
pub(crate) mod load;
pub(crate) mod login;
pub(crate) mod manifest;
pub(crate) mod provenance;
pub(crate) mod prune;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod referrers;
pub(crate) mod registry;
pub(crate) mod rmi;
pub(crate) mod save;
pub(crate) mod sbom;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod system;
pub(crate) mod tag;
pub(crate) mod trust;
pub(crate) mod version;

use kiln_core::ImageRef;

/// `--format`: docker's table by default, or one JSON document per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum Format {
    #[default]
    Table,
    Json,
}

/// An error's message with its causes, as one line (`a: b: c`): the one
/// chain printer, `kiln_core::error_chain`.
pub(crate) fn describe(e: &anyhow::Error) -> String {
    let e: &(dyn std::error::Error + 'static) = e.as_ref();
    kiln_core::error_chain(e)
}

/// The class of a failure: the kind of the first library error in the
/// chain (anyhow context added by the commands wraps them).
pub(crate) fn error_kind(e: &anyhow::Error) -> Option<kiln_core::ErrorKind> {
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<kiln_store::StoreError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_build::BuildError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_registry_client::RegistryError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_archive::ArchiveError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_container::ContainerError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_exec::ExecError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_exec::binfmt::BinfmtError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_network::NetworkError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_analyze::AnalyzeError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_sign::SignError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_sbom::SbomError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_layer::LayerError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_dockerfile::Error>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_registry::ConfigError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_registry::TlsError>() {
            return Some(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<kiln_vuln::Error>() {
            return Some(e.kind());
        }
        cause
            .downcast_ref::<kiln_template::Error>()
            .map(kiln_template::Error::kind)
    })
}

/// The exit status of a failed command. docker's CLI exits 1 for every
/// failed command (125 is for command lines it cannot parse, see
/// `main::usage_error`; `run`'s 125/126/127 come with the runtime), so
/// every kind maps to 1 today; this is the one place that will change.
pub(crate) fn exit_code(kind: Option<kiln_core::ErrorKind>) -> std::process::ExitCode {
    match kind {
        Some(_) | None => std::process::ExitCode::FAILURE,
    }
}

/// Parses a name given for tagging: it needs a repository and gets `latest`
/// when it has no tag; a digest cannot be a tag.
pub(crate) fn parse_tag_name(s: &str) -> anyhow::Result<ImageRef> {
    let r: ImageRef = s.parse()?;
    if r.digest().is_some() {
        anyhow::bail!("{s:?}: refusing to create a tag with a digest reference");
    }
    Ok(r)
}

/// Names an image as docker lists it: `REPOSITORY:TAG` familiar forms.
pub(crate) fn familiar_tags(names: &[ImageRef]) -> Vec<String> {
    names.iter().map(ImageRef::familiar).collect()
}

/// `SOURCE_DATE_EPOCH` from the environment: the one place kiln reads it
/// (libraries take the value). A value that is not a number of seconds is
/// an error, not silently "now".
pub(crate) fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map(Some).map_err(|_| {
            anyhow::anyhow!("SOURCE_DATE_EPOCH={v}: not a number of seconds since 1970")
        }),
        _ => Ok(None),
    }
}

/// docker's `config.json` for stored credentials: `$DOCKER_CONFIG`, else
/// `$HOME/.docker`.
pub(crate) fn docker_config_path() -> std::path::PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG").map(std::path::PathBuf::from);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    kiln_registry_client::DockerConfig::path_for(dir.as_deref(), home.as_deref())
}

/// docker's prune prompt: `WARNING! This will remove WHAT.` and a y/N
/// question on stderr; true only for a yes on stdin.
pub(crate) fn confirm(what: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Standard input as a `File`: sendable to worker threads, unbuffered by
/// std (kiln buffers itself), and eligible for kernel copy paths.
pub(crate) fn stdin_file() -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        std::io::stdin().as_fd().try_clone_to_owned()?,
    ))
}

/// Standard output as a `File` (see [`stdin_file`]).
pub(crate) fn stdout_file() -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        std::io::stdout().as_fd().try_clone_to_owned()?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kiln_core::ErrorKind;

    #[test]
    fn the_kind_of_the_first_library_error_under_the_context() {
        let e = anyhow::Error::from(kiln_store::StoreError::ImageNotFound("app:1".into()))
            .context("inspect app:1");
        assert_eq!(error_kind(&e), Some(ErrorKind::NotFound));
        let b = kiln_build::BuildError::Store(kiln_store::StoreError::ImageNotFound("x".into()));
        assert_eq!(
            error_kind(&anyhow::Error::from(b)),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(error_kind(&anyhow::anyhow!("plain")), None);
        // One chain printer: causes joined, a cause its parent quotes once.
        assert_eq!(describe(&e), "inspect app:1: No such image: app:1");
    }
}

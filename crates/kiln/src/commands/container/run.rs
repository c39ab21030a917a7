//! `kiln run` and `kiln create`: the image (pulled when missing, as
//! `--pull` says), the container, and for `run` its start: detached (the
//! full ID printed once the process runs) or attached (its output here,
//! signals forwarded, its exit code ours). kiln's own failures exit 125,
//! a program that cannot run 126, one not found 127, as docker's.

use std::io::Write;
use std::process::ExitCode;

use std::path::Path;

use anyhow::{bail, Context};
use kiln_container::{Attach, Engine};
use kiln_core::Platform;
use kiln_exec::binfmt;
use kiln_store::{Image, Store};

use super::flags::{CreateFlags, PullPolicy};
use crate::commands::registry::RegistryArgs;
use crate::commands::trust::TrustArgs;

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    flags: CreateFlags,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    flags: CreateFlags,
    #[command(flatten)]
    trust: TrustArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// docker's exit code for its own errors in `run` and `create`.
const KILN_FAILED: u8 = 125;

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("Error: {}", crate::commands::describe(e));
    ExitCode::from(KILN_FAILED)
}

pub(crate) fn create(store: &Store, args: CreateArgs) -> anyhow::Result<ExitCode> {
    match create_container(store, &args.flags, &args.trust, &args.registry) {
        Ok((_, id)) => {
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(fail(&e)),
    }
}

pub(crate) fn run(store: &Store, args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.flags.tty && args.flags.interactive && !args.detach {
        if let Err(e) = super::terminal::require_tty_stdin() {
            return Ok(fail(&e));
        }
    }
    let (engine, id) = match create_container(store, &args.flags, &args.trust, &args.registry) {
        Ok(made) => made,
        Err(e) => return Ok(fail(&e)),
    };
    if args.detach {
        return match engine.start(&id, Attach::Detached) {
            Ok(_) => {
                println!("{id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(start_failed(&engine, &id, e.into())),
        };
    }
    let mut child = match engine.start(
        &id,
        Attach::Foreground {
            stdin: args.flags.interactive,
        },
    ) {
        Ok(Some(child)) => child,
        Ok(None) => bail!("container {id} was already running"),
        Err(e) => return Ok(start_failed(&engine, &id, e.into())),
    };
    let raw = if args.flags.tty && args.flags.interactive {
        super::terminal::RawMode::enable()?
    } else {
        None
    };
    forward_signals(engine.clone(), id.clone(), child.id());
    let status = child.wait().context("wait for the container's monitor");
    drop(raw);
    let code = status?.code().unwrap_or(KILN_FAILED as i32);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// A start that failed: docker's exit code for why (126/127 for the
/// program, else 125), the reason printed.
fn start_failed(engine: &Engine, id: &str, e: anyhow::Error) -> ExitCode {
    eprintln!("Error: {}", crate::commands::describe(&e));
    let code = engine
        .containers()
        .load(id)
        .map(|c| c.state.exit_code)
        .unwrap_or(KILN_FAILED as i32);
    let code = if matches!(code, 126 | 127) {
        code
    } else {
        KILN_FAILED as i32
    };
    ExitCode::from(code as u8)
}

/// The image `flags` names: from the store, pulled when `--pull` says;
/// `--platform`'s image of a multi-platform one. With `--verify-key` or
/// `--signature-policy` the image must pass the policy (a pull checks it in
/// the registry first; the stored image is checked against the signatures
/// kept beside it). Checked to run here (natively or through QEMU) before
/// any container exists.
fn image_for(
    store: &Store,
    flags: &CreateFlags,
    trust: &TrustArgs,
    registry: &RegistryArgs,
) -> anyhow::Result<Image> {
    let policy = trust.policy()?;
    let image = pulled_or_local(store, flags, policy.as_ref(), registry)?;
    if let Some(p) = &policy {
        crate::commands::trust::enforce_stored(store, p, &flags.image)?;
    }
    check_platform(&image, flags.platform.as_ref())?;
    Ok(image)
}

/// docker's warning for an image of another platform run without
/// `--platform`, and QEMU's presence for a foreign one.
fn check_platform(image: &Image, requested: Option<&Platform>) -> anyhow::Result<()> {
    let host = Platform::host();
    let config = &image.config;
    let arch = config.architecture.clone().unwrap_or_default();
    if arch.is_empty() {
        return Ok(());
    }
    let have = Platform::new(
        config.os.as_deref().unwrap_or("linux"),
        &arch,
        config.variant.as_deref(),
    );
    if requested.is_none() && have.architecture != host.architecture {
        eprintln!(
            "WARNING: The requested image's platform ({have}) does not match the detected host platform ({}/{}) and no specific platform was requested",
            host.os, host.architecture
        );
    }
    binfmt::check(&have, &host, Path::new(binfmt::BINFMT_DIR))?;
    Ok(())
}

fn pulled_or_local(
    store: &Store,
    flags: &CreateFlags,
    policy: Option<&kiln_sign::Policy>,
    registry: &RegistryArgs,
) -> anyhow::Result<Image> {
    let local = store.resolve(&flags.image).and_then(|(record, image)| {
        match &flags.platform {
            // A multi-platform image: the requested platform's manifest.
            Some(p) if kiln_core::media_types::is_index(&record.entry.media_type) => {
                store.load_image_for(&record.entry, p)
            }
            _ => Ok(image),
        }
    });
    match (flags.pull, local) {
        (PullPolicy::Always, _) => {}
        (_, Ok(image)) => return Ok(image),
        (PullPolicy::Never, Err(e)) => {
            return Err(anyhow::Error::from(e).context(format!(
                "No such image: {} (and --pull never: pull it first, or use --pull missing)",
                flags.image
            )))
        }
        (PullPolicy::Missing, Err(_)) => {
            eprintln!("Unable to find image '{}' locally", flags.image);
        }
    }
    crate::commands::pull::pull_for_run(
        store,
        &flags.image,
        flags.platform.clone(),
        registry,
        policy,
    )?;
    Ok(store.resolve(&flags.image)?.1)
}

/// Makes the container; its engine and ID.
fn create_container(
    store: &Store,
    flags: &CreateFlags,
    trust: &TrustArgs,
    registry: &RegistryArgs,
) -> anyhow::Result<(Engine, String)> {
    if let Some(path) = &flags.cidfile {
        if path.exists() {
            bail!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                path.display()
            );
        }
    }
    let image = image_for(store, flags, trust, registry)?;
    let request = flags.request(&image)?;
    let engine = super::engine(store)?;
    let container = engine.create(store, &image, request)?;
    let id = container.config.id.clone();
    if let Some(path) = &flags.cidfile {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("create the container ID file {}", path.display()))?;
        f.write_all(id.as_bytes())?;
    }
    Ok((engine, id))
}

/// An attached `run` passes the signals it gets to the container (docker's
/// `--sig-proxy`): Ctrl-C reaches the process, not only kiln. A window
/// change goes to the monitor, which holds the container's terminal.
pub(crate) fn forward_signals(engine: Engine, id: String, monitor: u32) {
    const WINCH: i32 = 28;
    // INT, TERM, HUP, QUIT, USR1, USR2, and WINCH.
    let signals = [2, 15, 1, 3, 10, 12, WINCH];
    kiln_container::signal::watch(&signals, move |sig| {
        if sig == WINCH {
            if let Some(pid) = rustix::process::Pid::from_raw(monitor as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
            }
        } else if let Err(e) = engine.signal(&id, sig) {
            tracing::debug!("forwarding signal {sig} to {id}: {e}");
        }
    });
}

//! `start`, `stop`, `kill`, `restart`, `rm`, `wait`, `rename`: each takes
//! containers by ID, prefix or name, goes through all of them, prints what
//! docker prints, and fails (exit 1) if any failed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use kiln_container::{Attach, Engine};
use kiln_store::Store;

#[derive(clap::Args)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Containers (ID, prefix or name)
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<i64>,
    /// Signal to send instead of the container's stop signal
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Containers (ID, prefix or name)
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Containers (ID, prefix or name)
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Containers (ID, prefix or name)
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct WaitArgs {
    /// Containers (ID, prefix or name)
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct RenameArgs {
    /// The container (ID, prefix or name)
    container: String,
    /// Its new name
    new_name: String,
}

/// Runs `each` on every name, printing docker's `Error response from
/// daemon: …` for the failures; exit 1 if any.
fn for_each(
    names: &[String],
    mut each: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for n in names {
        if let Err(e) = each(n) {
            eprintln!(
                "Error response from daemon: {}",
                crate::commands::describe(&e)
            );
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn start(store: &Store, args: StartArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let c = engine.get(name)?;
        if c.config.process.tty && args.interactive {
            super::terminal::require_tty_stdin()?;
        }
        let id = c.config.id;
        let Some(mut child) = engine.start(
            &id,
            Attach::Foreground {
                stdin: args.interactive,
            },
        )?
        else {
            bail!("container {name} is already running: use kiln logs -f to follow it");
        };
        let raw = if c.config.process.tty && args.interactive {
            super::terminal::RawMode::enable()?
        } else {
            None
        };
        super::run::forward_signals(engine.clone(), id.clone(), child.id());
        let status = child.wait();
        drop(raw);
        let code = status?.code().unwrap_or(125);
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        engine.start(&id, Attach::Detached)?;
        println!("{n}");
        Ok(())
    })
}

pub(crate) fn stop(store: &Store, args: StopArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let timeout = args.time.map(|t| Duration::from_secs(t.max(0) as u64));
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        match &args.signal {
            Some(s) => {
                let sig = kiln_container::signal::parse(s).map_err(|e| anyhow!(e))?;
                engine.stop_with(&id, sig, timeout)?
            }
            None => engine.stop(&id, timeout)?,
        }
        println!("{n}");
        Ok(())
    })
}

pub(crate) fn kill(store: &Store, args: KillArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let signal = kiln_container::signal::parse(&args.signal).map_err(|e| anyhow!(e))?;
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        engine
            .kill(&id, signal)
            .map_err(|e| anyhow!("Cannot kill container: {n}: {e}"))?;
        println!("{n}");
        Ok(())
    })
}

pub(crate) fn restart(store: &Store, args: StopArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    let timeout = args.time.map(|t| Duration::from_secs(t.max(0) as u64));
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        engine.stop(&id, timeout)?;
        engine.start(&id, Attach::Detached)?;
        println!("{n}");
        Ok(())
    })
}

pub(crate) fn rm(store: &Store, args: RmArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        engine.remove(store, &id, args.force, args.volumes)?;
        println!("{n}");
        Ok(())
    })
}

pub(crate) fn wait(store: &Store, args: WaitArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(store)?;
    for_each(&args.containers, |n| {
        let id = engine.get(n)?.config.id;
        println!("{}", engine.wait(&id)?);
        Ok(())
    })
}

pub(crate) fn rename(store: &Store, args: RenameArgs) -> anyhow::Result<ExitCode> {
    let engine: Engine = super::engine(store)?;
    let id = engine.get(&args.container)?.config.id;
    engine.containers().rename(&id, &args.new_name)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

/// `container prune`: every container that is not running, as docker's
/// output lists them.
pub(crate) fn prune(store: &Store, args: PruneArgs) -> anyhow::Result<ExitCode> {
    use kiln_container::Status;
    if !args.force && !crate::commands::confirm("all stopped containers") {
        return Ok(ExitCode::SUCCESS);
    }
    let engine = super::engine(store)?;
    let mut deleted = Vec::new();
    for c in engine.list()? {
        if matches!(
            c.state.status,
            Status::Exited | Status::Created | Status::Dead
        ) {
            engine.remove(store, c.id(), false, false)?;
            deleted.push(c.config.id);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in &deleted {
            println!("{d}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(ExitCode::SUCCESS)
}

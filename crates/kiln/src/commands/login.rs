//! `kiln login` / `kiln logout`: credentials in docker's config.json, checked
//! against the registry before they are stored.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use kiln_registry_client::{Credentials, DockerConfig, RegistryError};
use kiln_store::Store;

use super::registry::{block_on, RegistryArgs};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Registry host[:port] [default: docker.io]
    server: Option<String>,
    /// User name (asked for at a terminal when not given)
    #[arg(short, long)]
    username: Option<String>,
    /// Password (visible in the process list: prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(clap::Args)]
pub(crate) struct LogoutArgs {
    /// Registry host[:port] [default: docker.io]
    server: Option<String>,
    /// Credentials file [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json]
    #[arg(long, value_name = "FILE")]
    authfile: Option<std::path::PathBuf>,
}

/// `https://host/v2/` → `host`; Docker Hub's aliases → `docker.io`.
fn server_name(s: Option<&str>) -> String {
    let s = s.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// docker's words when there is no terminal to ask at.
const NO_TTY: &str = "Cannot perform an interactive login from a non TTY device";

/// Prompts on standard output (as docker does) and reads a line from the
/// terminal on standard input.
fn prompt(text: &str) -> anyhow::Result<String> {
    print!("{text}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Like [`prompt`] with the terminal's echo off, so the password is not
/// shown; the terminal is restored whatever the read gives.
fn prompt_hidden(text: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd())?;
    restore_on_interrupt(saved.clone())?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(stdin.as_fd(), OptionalActions::Now, &quiet)?;
    let line = prompt(text);
    let restored = tcsetattr(stdin.as_fd(), OptionalActions::Now, &saved);
    // The Enter typed was not echoed either.
    println!();
    let line = line?;
    restored?;
    Ok(line)
}

/// Ctrl-C at the password prompt would leave the terminal without echo:
/// from here on an interrupt restores `saved` first, then exits as an
/// interrupted process does (130). Returns once the handler is in place.
fn restore_on_interrupt(saved: rustix::termios::Termios) -> anyhow::Result<()> {
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return drop(ready.send(Err(e))),
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut interrupt = match signal(SignalKind::interrupt()) {
                Ok(s) => s,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let _ = ready.send(Ok(()));
            interrupt.recv().await;
            let stdin = std::io::stdin();
            let _ = rustix::termios::tcsetattr(
                std::os::fd::AsFd::as_fd(&stdin),
                rustix::termios::OptionalActions::Now,
                &saved,
            );
            println!();
            std::process::exit(130);
        })
    });
    installed
        .recv()
        .map_err(|_| anyhow::anyhow!("the interrupt handler did not start"))??;
    Ok(())
}

pub(crate) fn login(_store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let server = server_name(args.server.as_deref());
    let interactive = std::io::stdin().is_terminal() && !args.password_stdin;
    let path = args
        .registry
        .authfile
        .clone()
        .unwrap_or_else(super::docker_config_path);
    // docker first tries what it has stored when no credentials are given,
    // and asks (offering the stored user name) only if they fail.
    let mut stored_user = None;
    if args.username.is_none() && args.password.is_none() && !args.password_stdin {
        if let Some(creds) = DockerConfig::load(&path)?.credentials(&server)? {
            println!("Authenticating with existing credentials...");
            match try_login(&args.registry, &server, &creds) {
                Ok(()) => {
                    println!("Login Succeeded");
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
            stored_user = Some(creds.username);
        }
    }
    let username = match args.username {
        Some(u) => u,
        None if interactive => match &stored_user {
            Some(stored) => {
                let typed = prompt(&format!("Username ({stored}): "))?
                    .trim()
                    .to_string();
                if typed.is_empty() {
                    stored.clone()
                } else {
                    typed
                }
            }
            None => prompt("Username: ")?.trim().to_string(),
        },
        None if args.password_stdin => {
            anyhow::bail!("Must provide --username with --password-stdin")
        }
        None => anyhow::bail!("{NO_TTY}"),
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            anyhow::bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut p = String::new();
        std::io::stdin().lock().read_line(&mut p)?;
        p.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if interactive {
        prompt_hidden("Password: ")?
    } else {
        anyhow::bail!("{NO_TTY}");
    };
    if username.is_empty() || password.is_empty() {
        anyhow::bail!("user name and password must not be empty");
    }
    let creds = Credentials {
        username,
        secret: password,
    };
    try_login(&args.registry, &server, &creds)?;
    let mut config = DockerConfig::load(&path)?;
    if !config.store(&server, &creds)? {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        );
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// Checks `creds` against the registry (a ping that must authenticate).
fn try_login(registry: &RegistryArgs, server: &str, creds: &Credentials) -> anyhow::Result<()> {
    let mut registry = registry.clone();
    registry.creds = Some(format!("{}:{}", creds.username, creds.secret));
    let client = registry.client()?;
    block_on(client.ping(server))?.map_err(|e| login_failed(server, e))
}

/// A refused login says so, with the registry and the status; the
/// client's own advice ("log in with kiln login") would be circular here.
fn login_failed(server: &str, e: RegistryError) -> anyhow::Error {
    match e {
        RegistryError::Unauthorized { detail, .. } => anyhow::anyhow!(
            "login to {server} failed: 401 Unauthorized ({detail}): check the user name and password"
        ),
        RegistryError::Denied { detail, .. } => {
            anyhow::anyhow!("login to {server} failed: 403 Forbidden ({detail})")
        }
        e => anyhow::Error::new(e).context(format!("login to {server} failed")),
    }
}

pub(crate) fn logout(_store: &Store, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let server = server_name(args.server.as_deref());
    let path = args.authfile.unwrap_or_else(super::docker_config_path);
    let mut config = DockerConfig::load(&path)?;
    if config.erase(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(ExitCode::SUCCESS)
}

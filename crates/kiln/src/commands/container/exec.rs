//! `kiln exec`: a command in a running container, its output here and its
//! exit code ours (docker: 126 when the program cannot be run, 127 when it
//! is not found, 1 when the container does not run).

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use kiln_container::{ContainerError, ExecRequest};
use kiln_store::Store;

use super::flags::{env_file, from_here};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// The container (ID, prefix or name)
    container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub(crate) fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let mut env = Vec::new();
    for f in &args.env_file {
        env.extend(env_file(f)?);
    }
    env.extend(args.env.iter().filter_map(|kv| from_here(kv)));
    let req = ExecRequest {
        cmd: args.command,
        user: args.user,
        workdir: args.workdir,
        env,
    };
    let engine = super::engine(store)?;
    let result = if args.detach {
        engine.exec_detached(&args.container, &req).map(|()| 0)
    } else if args.tty {
        if args.interactive {
            super::terminal::require_tty_stdin()?;
        }
        let raw = if args.interactive {
            super::terminal::RawMode::enable()?
        } else {
            None
        };
        let code = engine.exec_terminal(&args.container, &req);
        drop(raw);
        code
    } else {
        // Without -i docker's exec gets no input.
        let stdin = if args.interactive {
            Some(std::io::stdin().as_fd().try_clone_to_owned()?)
        } else {
            None
        };
        let out = std::io::stdout().as_fd().try_clone_to_owned()?;
        let err = std::io::stderr().as_fd().try_clone_to_owned()?;
        engine.exec(&args.container, &req, stdin, out, err)
    };
    match result {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        Err(ContainerError::CannotRun { code, message }) => {
            eprintln!("{}", ContainerError::CannotRun { code, message });
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        Err(e @ ContainerError::NotRunning(_)) => {
            eprintln!("Error response from daemon: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

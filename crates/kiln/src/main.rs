//! The `kiln` command line: docker-compatible verbs over kiln's libraries.
//! One file per command under `commands/`; this file parses the command
//! line, opens the store, and turns errors into docker-style messages and
//! exit codes.

mod commands;
mod format;
mod memory;
mod output;
mod startup;
mod trash;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_store::Store;

use commands::container;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    // Like docker: `kiln` (or `kiln image`) alone prints help, exit 0.
    arg_required_else_help = true,
    about = "Build, store, move and run container images. No daemon."
)]
struct Cli {
    #[command(flatten)]
    global: startup::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an image from a root filesystem tarball
    Import(commands::import::Args),
    /// List images
    Images(commands::images::Args),
    /// Give an image another name
    Tag(commands::tag::Args),
    /// Remove images
    Rmi(commands::rmi::Args),
    /// Manage images
    #[command(subcommand, arg_required_else_help = true)]
    Image(ImageCommand),
    /// Show low-level information about containers and images (JSON)
    Inspect(commands::inspect::Args),
    /// Show the history of an image
    History(commands::history::Args),
    /// Save images to a tar archive (docker and OCI formats at once)
    Save(commands::save::Args),
    /// Load images from a tar archive
    Load(commands::load::Args),
    /// Manage the store
    #[command(subcommand, arg_required_else_help = true)]
    System(SystemCommand),
    /// Work with layers directly: create, apply, diff
    #[command(subcommand, arg_required_else_help = true)]
    Layer(commands::layer::Command),
    /// Build an image from a Dockerfile and a context
    Build(Box<commands::build::Args>),
    /// Explore an image's layers and wasted space (kiln image analyze)
    Dive(Box<commands::analyze::Args>),
    /// List an image's packages (SBOM: SPDX, CycloneDX, table) with the layer and step that installed each
    Sbom(commands::sbom::Args),
    /// Manage the build cache
    #[command(subcommand, arg_required_else_help = true)]
    Builder(commands::builder::Command),
    /// Download an image from a registry
    Pull(commands::pull::Args),
    /// Upload an image to a registry
    Push(commands::push::Args),
    /// Sign an image with a key, as cosign does (stored beside it in the store, or in its registry)
    Sign(commands::sign::SignArgs),
    /// Verify an image's signatures with a public key (offline: no transparency log)
    Verify(commands::sign::VerifyArgs),
    /// Attest an image: an in-toto statement in a DSSE envelope, signed with a key
    Attest(commands::sign::AttestArgs),
    /// Verify an image's attestations with a public key (offline)
    VerifyAttestation(commands::sign::VerifyAttestationArgs),
    /// Make a key pair in cosign's formats (PREFIX.key encrypted, PREFIX.pub)
    GenerateKeyPair(commands::keys::GenerateArgs),
    /// Import a PEM private key (ECDSA P-256) into cosign's key formats
    ImportKeyPair(commands::keys::ImportArgs),
    /// Log in to a registry (credentials go to docker's config.json)
    Login(commands::login::Args),
    /// Log out from a registry
    Logout(commands::login::LogoutArgs),
    /// Copy an image between registries, layouts, archives and the store
    Copy(commands::copy::Args),
    /// Serve a registry (OCI distribution API) from <root>/registry
    Serve(commands::serve::Args),
    /// Check Dockerfiles: BuildKit's build checks, hadolint's rules, kiln's own
    #[command(
        long_about = "Check Dockerfiles: every rule of BuildKit's `docker build --check` (the # check= directive applies), hadolint's DL3002 DL3006 DL3007 DL3009 DL3015 DL3020 DL3025 DL3064 DL4006, and kiln's own (a file deleted in a later layer than the one that created it; an unpinned base image in a Dockerfile that asks for reproducibility).\n\nkiln lint reads no image store: InvalidBaseImagePlatform is skipped, and UndefinedVar skips stages built on images (their environment is unknown). `kiln build --check` looks the base images up in the store and checks both."
    )]
    Lint(commands::lint::Args),
    /// Scan an image or an SBOM for known vulnerabilities (OSV database, offline)
    #[command(
        long_about = "Scan an image or an SBOM for known vulnerabilities, offline, against an OSV database in osv-scanner's layout (<Ecosystem>/all.zip; Debian, Alpine, Ubuntu, PyPI, npm, Go, crates.io). Distro packages match by their source package, as OSV's distro records name them. `kiln scan --update-db` downloads the database.\n\nExit status: 0; 1 when --fail-on LEVEL is given and a vulnerability at or above LEVEL matched (as grype's --fail-on; a match without any rating, `unknown`, never trips it), or on an error. Severity: the package entry's own rating, then the record's (GitHub's HIGH/MODERATE…), then the highest CVSS v3 base score computed from the vectors."
    )]
    Scan(commands::scan::Args),
    /// Inspect Dockerfiles: parse (and expand) as a build would
    #[command(subcommand, arg_required_else_help = true)]
    Dockerfile(commands::dockerfile::Command),
    /// Show the version, the store and the container runtimes found
    Version(commands::version::Args),
    /// Create and run a new container from an image
    Run(Box<container::run::RunArgs>),
    /// Create a new container
    Create(Box<container::run::CreateArgs>),
    /// Start one or more stopped containers
    Start(container::lifecycle::StartArgs),
    /// Stop one or more running containers
    Stop(container::lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(container::lifecycle::KillArgs),
    /// Restart one or more containers
    Restart(container::lifecycle::StopArgs),
    /// Remove one or more containers
    Rm(container::lifecycle::RmArgs),
    /// List containers
    Ps(container::ps::Args),
    /// Fetch the logs of a container
    Logs(container::logs::Args),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::lifecycle::WaitArgs),
    /// Rename a container
    Rename(container::lifecycle::RenameArgs),
    /// Execute a command in a running container
    Exec(container::exec::Args),
    /// Create a new image from a container's changes
    Commit(container::commit::Args),
    /// Display the running processes of a container
    Top(container::top::Args),
    /// List port mappings or a specific mapping for the container
    Port(container::network::PortArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::stats::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::diff::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(container::cp::Args),
    /// Manage containers
    #[command(subcommand, arg_required_else_help = true)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand, arg_required_else_help = true)]
    Volume(container::volume::Command),
    /// Manage networks
    #[command(subcommand, arg_required_else_help = true)]
    Network(container::netcmd::Command),
    /// Manage manifest lists (multi-platform images) in the store and in registries
    #[command(subcommand, arg_required_else_help = true)]
    Manifest(commands::manifest::Command),
    /// Inspect and assemble images in a registry (buildx's imagetools)
    #[command(subcommand, arg_required_else_help = true)]
    Imagetools(commands::imagetools::Command),
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Create and run a new container from an image
    Run(Box<container::run::RunArgs>),
    /// Create a new container
    Create(Box<container::run::CreateArgs>),
    /// Start one or more stopped containers
    Start(container::lifecycle::StartArgs),
    /// Stop one or more running containers
    Stop(container::lifecycle::StopArgs),
    /// Kill one or more running containers
    Kill(container::lifecycle::KillArgs),
    /// Restart one or more containers
    Restart(container::lifecycle::StopArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(container::lifecycle::RmArgs),
    /// List containers
    #[command(alias = "ps", alias = "list")]
    Ls(container::ps::Args),
    /// Fetch the logs of a container
    Logs(container::logs::Args),
    /// Block until one or more containers stop, then print their exit codes
    Wait(container::lifecycle::WaitArgs),
    /// Rename a container
    Rename(container::lifecycle::RenameArgs),
    /// Remove all stopped containers
    Prune(container::lifecycle::PruneArgs),
    /// Execute a command in a running container
    Exec(container::exec::Args),
    /// Create a new image from a container's changes
    Commit(container::commit::Args),
    /// Display the running processes of a container
    Top(container::top::Args),
    /// List port mappings or a specific mapping for the container
    Port(container::network::PortArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(container::stats::Args),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(container::diff::Args),
    /// Copy files/folders between a container and the local filesystem
    Cp(container::cp::Args),
    /// Show low-level information about containers (JSON)
    Inspect(commands::inspect::Args),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Remove unused images
    Prune(commands::prune::Args),
    /// List images
    #[command(alias = "list")]
    Ls(commands::images::Args),
    /// List the artifacts (signatures, SBOMs) that refer to an image
    Referrers(commands::referrers::Args),
    /// Remove images
    #[command(visible_alias = "remove", alias = "rmi")]
    Rm(commands::rmi::Args),
    /// Build an image from a Dockerfile and a context
    Build(Box<commands::build::Args>),
    /// Explore an image's layers: efficiency, wasted space and its causes
    Analyze(Box<commands::analyze::Args>),
    /// Show low-level information about images
    Inspect(commands::inspect::Args),
    /// Show the history of an image
    History(commands::history::Args),
    /// Create an image from a root filesystem tarball
    Import(commands::import::Args),
    /// Give an image another name
    Tag(commands::tag::Args),
    /// Save images to a tar archive
    Save(commands::save::Args),
    /// Load images from a tar archive
    Load(commands::load::Args),
    /// Download an image from a registry
    Pull(commands::pull::Args),
    /// Upload an image to a registry
    Push(commands::push::Args),
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Verify every blob's digest and every image's graph
    Check(commands::system::CheckArgs),
    /// Show disk usage: images, shared and unique bytes
    Df(commands::system::DfArgs),
}

fn main() -> ExitCode {
    // `kiln images | head` should end quietly, as other CLI tools do,
    // instead of panicking on a closed stdout.
    sigpipe::reset();
    // The built-in container runtime re-executes kiln: handled before
    // anything else starts (single-threaded, no logging set up).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(kiln_exec::BUILTIN_CHILD_ARG) {
        return ExitCode::from(kiln_exec::run_builtin_child(&argv[2..]).clamp(0, 255) as u8);
    }
    // A container's monitor (started by `run`/`start`): likewise before
    // anything else.
    if argv.get(1).map(String::as_str) == Some(kiln_container::MONITOR_ARG) {
        let helper = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv[0]));
        return ExitCode::from(kiln_container::run_monitor(&argv[2..], helper).clamp(0, 255) as u8);
    }
    // A detached exec's helper (started by `exec -d`): likewise.
    if argv.get(1).map(String::as_str) == Some(kiln_container::EXEC_ARG) {
        let helper = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv[0]));
        return ExitCode::from(
            kiln_container::run_exec_helper(&argv[2..], helper).clamp(0, 255) as u8,
        );
    }
    // A user network's DNS responder (started by a container's monitor or
    // `network connect`): likewise.
    if argv.get(1).map(String::as_str) == Some(kiln_container::net::DNS_ARG) {
        return ExitCode::from(
            kiln_container::net::run_dns_responder(&argv[2..]).clamp(0, 255) as u8,
        );
    }
    // The snapshot trash's emptier (started after a command): likewise.
    if argv.get(1).map(String::as_str) == Some(trash::EMPTY_TRASH_ARG) {
        return ExitCode::from(trash::run_emptier(&argv[2..]));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let root = cli.global.init();
    // `version` works without a store (and must not create one).
    if let Command::Version(a) = cli.command {
        let path = std::env::var_os("PATH");
        return report(commands::version::run(&root, path.as_deref(), a));
    }
    // `lint` reads Dockerfiles only.
    if let Command::Lint(a) = cli.command {
        return report(commands::lint::run(a));
    }
    // `scan` opens the store only for an image (not yet: see scan.rs).
    if let Command::Scan(a) = cli.command {
        return report(commands::scan::run(&root, a));
    }
    // Key files need no store.
    if let Command::GenerateKeyPair(a) = cli.command {
        return report(commands::keys::generate(a));
    }
    if let Command::ImportKeyPair(a) = cli.command {
        return report(commands::keys::import(a));
    }
    // `serve` keeps its own layout and needs no store.
    if let Command::Serve(a) = cli.command {
        return report(commands::serve::run(&root, &argv, a));
    }
    let result = Store::open(&root)
        .map_err(anyhow::Error::from)
        .and_then(|store| run(&store, cli.command));
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(&argv[0]));
    trash::empty_after(&root, &exe);
    report(result)
}

/// Usage errors exit 125, as docker's CLI errors do (so scripts can tell
/// "kiln was called wrong" from "the command failed", exit 1); `--help`
/// and `--version` print and exit 0.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Printing fails only when stdout/stderr are gone; nothing to tell then.
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
        _ => ExitCode::from(125),
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            // docker prints a template's error as it is ("template parsing
            // error: …"), every other one after "Error: ".
            if e.downcast_ref::<kiln_template::Error>().is_some() {
                eprintln!("{}", commands::describe(&e));
            } else {
                eprintln!("Error: {}", commands::describe(&e));
            }
            commands::exit_code(commands::error_kind(&e))
        }
    }
}

fn run(store: &Store, command: Command) -> anyhow::Result<ExitCode> {
    use commands::*;
    match command {
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(store, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(store, a),
        Command::Image(ImageCommand::Referrers(a)) => referrers::run(store, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(store, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(store, a),
        Command::Image(ImageCommand::Prune(a)) => prune::run(store, a),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => inspect::run(store, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(store, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(store, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(store, a),
        Command::System(SystemCommand::Check(a)) => system::check(store, a),
        Command::System(SystemCommand::Df(a)) => system::df(store, a),
        Command::Layer(c) => layer::run(store, c),
        Command::Dockerfile(c) => dockerfile::run(c),
        Command::Lint(a) => lint::run(a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::run(store, *a),
        Command::Builder(c) => builder::run(store, c),
        Command::Sbom(a) => sbom::run(store, a),
        Command::Dive(a) | Command::Image(ImageCommand::Analyze(a)) => {
            analyze::run(store, *a, analyze::ci_from_env())
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(store, a),
        Command::Sign(a) => sign::sign(store, a),
        Command::Verify(a) => sign::verify(store, a),
        Command::Attest(a) => sign::attest(store, a),
        Command::VerifyAttestation(a) => sign::verify_attestation(store, a),
        Command::GenerateKeyPair(a) => keys::generate(a),
        Command::ImportKeyPair(a) => keys::import(a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(store, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            container::run::run(store, *a)
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::run::create(store, *a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            container::lifecycle::start(store, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::lifecycle::stop(store, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::lifecycle::kill(store, a)
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::lifecycle::restart(store, a)
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            container::lifecycle::rm(store, a)
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => {
            container::ps::run(store, a)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs::run(store, a)
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::lifecycle::wait(store, a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::lifecycle::rename(store, a)
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            container::exec::run(store, a)
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            container::commit::run(store, a)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            container::top::run(store, a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            container::network::port(store, a)
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            container::stats::run(store, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            container::diff::run(store, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            container::cp::run(store, a)
        }
        Command::Container(ContainerCommand::Prune(a)) => container::lifecycle::prune(store, a),
        Command::Container(ContainerCommand::Inspect(a)) => inspect::run_containers(store, a),
        Command::Volume(c) => container::volume::run(store, c),
        Command::Network(c) => container::netcmd::run(store, c),
        Command::Manifest(c) => commands::manifest::run(store, c),
        Command::Imagetools(c) => commands::imagetools::run(store, c),
        Command::Login(a) => login::login(store, a),
        Command::Logout(a) => login::logout(store, a),
        Command::Copy(a) => copy::run(store, a),
        // Normally answered before the store opens (see main).
        Command::Version(a) => version::run(store.root(), std::env::var_os("PATH").as_deref(), a),
        Command::Serve(_) => unreachable!("serve is run before the store opens"),
        Command::Scan(a) => scan::run(store.root(), a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every command, by path: `kiln images --filter`.
    fn missing_help(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                let name = match (arg.get_long(), arg.get_short()) {
                    (Some(l), _) => format!("--{l}"),
                    (None, Some(s)) => format!("-{s}"),
                    (None, None) => format!("<{id}>"),
                };
                out.push(format!("{path} {name}"));
            }
        }
        for sub in cmd.get_subcommands() {
            missing_help(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_has_a_help_line() {
        let mut missing = Vec::new();
        missing_help(&Cli::command(), "kiln", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a help line (add a /// doc comment):\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

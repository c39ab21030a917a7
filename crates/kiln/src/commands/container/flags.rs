//! `run`/`create` flags, and the request they make with the image's
//! config: docker's merge (image ENV then `--env-file` then `-e`, image
//! WORKDIR/USER/labels/STOPSIGNAL/HEALTHCHECK/VOLUME unless overridden).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use kiln_container::command::{resolve, EntrypointFlag};
use kiln_container::record::Healthcheck;
use kiln_container::{CreateRequest, HostConfig, MountConfig, ProcessConfig, RestartPolicy};

use super::mounts::{mount_flag, parse_bytes, tmpfs_flag, volume_flag};
use kiln_core::Platform;
use kiln_store::Image;

/// `--pull`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum PullPolicy {
    #[default]
    Missing,
    Always,
    Never,
}

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CreateFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" removes it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Set metadata on a container (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Bind mount a volume: NAME:/path[:ro], /host:/path[:ro], or /path
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount: type=bind|volume|tmpfs,source=…,target=…[,readonly]
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs directory: /path[:size=BYTES]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Pull image before running
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security options: seccomp=FILE|unconfined, no-new-privileges
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Connect a container to a network: bridge (default), none or host
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// OCI runtime binary (runc) instead of kiln's builtin one
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// A Go duration flag in nanoseconds.
fn nanos(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            kiln_core::parse_go_duration(s)
                .map(|d| d.as_nanos() as i64)
                .ok_or_else(|| {
                    anyhow!("invalid argument {s:?} for --{flag}: use a duration such as 30s or 1m")
                })
        })
        .transpose()
}

fn key_of(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

/// Sets `KEY=VALUE` in `env`, replacing an earlier value of `KEY`.
fn set_env(env: &mut Vec<String>, kv: String) {
    let key = key_of(&kv).to_string();
    env.retain(|e| key_of(e) != key);
    env.push(kv);
}

/// `-e KEY` (no `=`) takes KEY's value from this process, or is dropped
/// when unset, as docker does.
pub(super) fn from_here(kv: &str) -> Option<String> {
    if kv.contains('=') {
        return Some(kv.to_string());
    }
    std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
}

pub(super) fn env_file(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('=') {
            bail!("{}:{}: no variable name on the line", path.display(), n + 1);
        }
        out.extend(from_here(line));
    }
    Ok(out)
}

impl CreateFlags {
    /// The create request for `image`, everything validated.
    pub(crate) fn request(&self, image: &Image) -> anyhow::Result<CreateRequest> {
        let restart: RestartPolicy = self.restart.parse().map_err(|e: String| anyhow!(e))?;
        if self.rm && restart != RestartPolicy::No {
            bail!("Conflicting options: --restart and --rm");
        }
        let network = match self.network.as_str() {
            "default" => "bridge",
            n if kiln_container::net::network_exists(n) => n,
            n => bail!("network {n} not found"),
        };
        if !self.network_alias.is_empty() && matches!(network, "bridge" | "host" | "none") {
            bail!("network-scoped alias is supported only for containers in user defined networks");
        }
        let cfg = image.config.container();
        let exposed: Vec<String> = cfg
            .exposed_ports
            .as_ref()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let publish = super::network::publish(network, &self.publish, self.publish_all, &exposed)?;
        let flag = match self.entrypoint.as_deref() {
            None => EntrypointFlag::Image,
            Some("") => EntrypointFlag::Cleared,
            Some(p) => EntrypointFlag::Program(p.to_string()),
        };
        let command = resolve(
            cfg.entrypoint.as_deref(),
            cfg.cmd.as_deref(),
            &flag,
            &self.args,
        )
        .map_err(|e| anyhow!(e))?;
        let mut env = cfg.env().to_vec();
        for f in &self.env_file {
            for kv in env_file(f)? {
                set_env(&mut env, kv);
            }
        }
        for kv in &self.env {
            if let Some(kv) = from_here(kv) {
                set_env(&mut env, kv);
            }
        }
        let mut labels = cfg.labels.clone().unwrap_or_default();
        for l in &self.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let mut mounts = Vec::new();
        for v in &self.volumes {
            mounts.push(volume_flag(v)?);
        }
        for m in &self.mounts {
            mounts.push(mount_flag(m)?);
        }
        for t in &self.tmpfs {
            mounts.push(tmpfs_flag(t)?);
        }
        let image_volumes: Vec<String> = cfg
            .volumes
            .as_ref()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        // An image VOLUME without a mount of the user's gets an anonymous
        // volume.
        for path in &image_volumes {
            let norm = path.trim_end_matches('/');
            if !mounts
                .iter()
                .any(|m| m.target().trim_end_matches('/') == norm)
            {
                mounts.push(MountConfig::Volume {
                    name: String::new(),
                    target: path.clone(),
                    read_only: false,
                    anonymous: true,
                });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for m in &mounts {
            if !seen.insert(m.target().trim_end_matches('/').to_string()) {
                bail!("Duplicate mount point: {}", m.target());
            }
        }
        let healthcheck = self.healthcheck(&cfg)?;
        let memory = self.memory.as_deref().map(parse_bytes).transpose()?;
        if let Some(m) = memory {
            if m < 6 * 1024 * 1024 {
                bail!("Minimum memory limit allowed is 6MB");
            }
        }
        let nano_cpus = match self.cpus {
            Some(c) if c <= 0.0 => {
                bail!("Range of CPUs is from 0.01 to the number of CPUs available")
            }
            Some(c) => Some((c * 1e9) as i64),
            None => None,
        };
        let mut extra_hosts = Vec::new();
        for h in &self.add_host {
            let (name, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| anyhow!("invalid argument \"{h}\" for --add-host: use HOST:IP"))?;
            extra_hosts.push((name.to_string(), ip.to_string()));
        }
        if let Some(s) = &self.stop_signal {
            kiln_container::signal::parse(s).map_err(|e| anyhow!(e))?;
        }
        let (path, args) = command
            .argv
            .split_first()
            .map(|(p, a)| (p.clone(), a.to_vec()))
            .unwrap_or_default();
        Ok(CreateRequest {
            name: self.name.clone(),
            image: self.image.clone(),
            process: ProcessConfig {
                path,
                args,
                entrypoint: command.entrypoint,
                cmd: command.cmd,
                env,
                working_dir: self
                    .workdir
                    .clone()
                    .or_else(|| cfg.working_dir.clone())
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
                user: self
                    .user
                    .clone()
                    .or_else(|| cfg.user.clone())
                    .unwrap_or_default(),
                hostname: self.hostname.clone().unwrap_or_default(),
                labels,
                tty: self.tty,
                open_stdin: self.interactive,
                stop_signal: self.stop_signal.clone().or_else(|| cfg.stop_signal.clone()),
                stop_timeout: self.stop_timeout,
                healthcheck,
                volumes: image_volumes,
                exposed_ports: exposed,
                on_build: cfg.on_build.clone(),
            },
            host: HostConfig {
                mounts,
                network: network.to_string(),
                publish,
                dns: self.dns.clone(),
                dns_search: self.dns_search.clone(),
                network_aliases: self.network_alias.clone(),
                connected: Vec::new(),
                ip: self.ip,
                mac_address: super::network::mac_address(self.mac_address.as_deref())?,
                auto_remove: self.rm,
                restart,
                read_only: self.read_only,
                init: self.init,
                privileged: self.privileged,
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                security_opt: self.security_opts()?,
                memory,
                nano_cpus,
                pids_limit: self.pids_limit,
                extra_hosts,
                runtime: self.runtime.clone(),
            },
            volume_labels: BTreeMap::new(),
        })
    }

    /// `--security-opt`, a seccomp profile file read now and kept as its
    /// JSON (docker does the same), so the container never depends on it.
    fn security_opts(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for opt in &self.security_opt {
            match opt.split_once(['=', ':']) {
                Some(("seccomp", path)) if path != "unconfined" => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
                    let json: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("decoding seccomp profile ({path}) failed"))?;
                    out.push(format!("seccomp={json}"));
                }
                _ => out.push(opt.clone()),
            }
        }
        Ok(out)
    }

    fn healthcheck(
        &self,
        cfg: &kiln_core::image::ContainerConfig,
    ) -> anyhow::Result<Option<Healthcheck>> {
        if self.no_healthcheck {
            return Ok(None);
        }
        let image = cfg.healthcheck.as_ref();
        let mut test = image.and_then(|h| h.test.clone()).unwrap_or_default();
        if let Some(cmd) = &self.health_cmd {
            test = vec!["CMD-SHELL".into(), cmd.clone()];
        }
        if test.is_empty() || test.first().map(String::as_str) == Some("NONE") {
            return Ok(None);
        }
        // Unset stays 0, as docker records it (its inspect leaves it out);
        // the prober applies docker's defaults (30s, 30s, 3 retries).
        let pick = |flag: Option<i64>, img: Option<i64>, default: i64| {
            flag.or(img.filter(|v| *v > 0)).unwrap_or(default)
        };
        Ok(Some(Healthcheck {
            test,
            interval: pick(
                nanos("health-interval", &self.health_interval)?,
                image.and_then(|h| h.interval),
                0,
            ),
            timeout: pick(
                nanos("health-timeout", &self.health_timeout)?,
                image.and_then(|h| h.timeout),
                0,
            ),
            start_period: pick(
                nanos("health-start-period", &self.health_start_period)?,
                image.and_then(|h| h.start_period),
                0,
            ),
            retries: pick(self.health_retries, image.and_then(|h| h.retries), 0),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn env_values_replace_earlier_ones() {
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(&mut env, "A=3".into());
        assert_eq!(env, ["B=2", "A=3"]);
    }
}

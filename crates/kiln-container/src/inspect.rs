//! docker's `container inspect` document for a container: the same keys,
//! in docker's order, with docker's zero values (`null` lists, the zero
//! time `0001-01-01T00:00:00Z`), so scripts and templates written for
//! docker read it. What kiln does not have (networks beyond `none` and
//! `host`, cgroup knobs it does not set) is left out rather than made up;
//! what it has is where docker puts it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use crate::containers::Container;
use crate::engine::{open_snapshotter, Engine};
use crate::error::Result;
use crate::record::{HealthResult, Healthcheck, MountConfig, RestartPolicy, Status};

/// Go's zero `time.Time`, as docker prints an unset time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A stored time (RFC 3339, nine fraction digits) as Go's JSON prints a
/// `time.Time` (RFC 3339 with nanoseconds, trailing zeros trimmed); the
/// zero time when unset.
pub fn go_time(t: Option<&str>) -> String {
    t.and_then(kiln_core::parse_rfc3339)
        .map(kiln_core::rfc3339)
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: InspectState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: InspectHostConfig,
    pub graph_driver: GraphDriver,
    /// `inspect -s`: the writable layer's size, and with the image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    pub mounts: Vec<InspectMount>,
    pub config: InspectConfig,
    pub network_settings: Value,
}

/// docker's `HostConfig`, the fields kiln has, in docker's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: Value,
    pub network_mode: String,
    pub port_bindings: Value,
    pub restart_policy: Value,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Option<Vec<String>>,
    pub ipc_mode: String,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub runtime: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// docker's `Config` (`container.Config`), in docker's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<Value>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<InspectHealthcheck>,
    pub image: String,
    pub volumes: Value,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<InspectHealth>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHealth {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<InspectProbe>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// `LowerDir`, `MergedDir`, `UpperDir`, `WorkDir` (sorted as docker's).
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectMount {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

fn probe(r: &HealthResult) -> InspectProbe {
    InspectProbe {
        start: go_time(Some(&r.start)),
        end: go_time(Some(&r.end)),
        exit_code: r.exit_code,
        output: r.output.clone(),
    }
}

/// `None` for an empty list: docker's `null`.
fn list(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// docker's `HealthConfig` (nanoseconds): its zero fields are left out.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectHealthcheck {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn healthcheck(h: &Healthcheck) -> InspectHealthcheck {
    InspectHealthcheck {
        test: h.test.clone(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        retries: h.retries,
    }
}

impl Engine {
    /// Container `c`'s inspect document.
    pub fn inspect(&self, c: &Container) -> Result<ContainerInspect> {
        let (cfg, s, p, h) = (&c.config, &c.state, &c.config.process, &c.config.host);
        let bundle = self.root.join("exec/bundles").join(&cfg.id);
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let health = s.health.as_ref().map(|h| InspectHealth {
            status: h.status.clone(),
            failing_streak: h.failing_streak,
            log: h.log.iter().map(probe).collect(),
        });
        let running = s.status == Status::Running;
        let state = InspectState {
            status: s.status.as_str().to_string(),
            running: running || s.status == Status::Restarting,
            paused: false,
            restarting: s.status == Status::Restarting,
            oom_killed: s.oom_killed,
            dead: s.status == Status::Dead,
            pid: if running { s.pid.unwrap_or(0) } else { 0 },
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: go_time(s.started_at.as_deref()),
            finished_at: go_time(s.finished_at.as_deref()),
            health,
        };
        let mut binds = Vec::new();
        let mut mounts = Vec::new();
        let mut tmpfs = BTreeMap::new();
        for m in &h.mounts {
            match m {
                MountConfig::Volume {
                    name,
                    target,
                    read_only,
                    anonymous,
                } => {
                    if !anonymous {
                        binds.push(format!("{name}:{target}{}", ro_suffix(*read_only)));
                    }
                    mounts.push(InspectMount {
                        kind: "volume".into(),
                        name: name.clone(),
                        source: path(&self.volumes.data(name)),
                        destination: target.clone(),
                        driver: "local".into(),
                        mode: if *read_only { "ro" } else { "z" }.into(),
                        rw: !read_only,
                        propagation: String::new(),
                    });
                }
                MountConfig::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    binds.push(format!(
                        "{}:{target}{}",
                        source.display(),
                        ro_suffix(*read_only)
                    ));
                    mounts.push(InspectMount {
                        kind: "bind".into(),
                        name: String::new(),
                        source: path(source),
                        destination: target.clone(),
                        driver: String::new(),
                        mode: if *read_only { "ro" } else { "" }.into(),
                        rw: !read_only,
                        propagation: "rprivate".into(),
                    });
                }
                MountConfig::Tmpfs { target, size, exec } => {
                    let opts: Vec<String> = exec
                        .then(|| "exec".to_string())
                        .into_iter()
                        .chain(size.map(|n| format!("size={n}")))
                        .collect();
                    tmpfs.insert(target.clone(), opts.join(","));
                }
            }
        }
        let max_retries = match h.restart {
            RestartPolicy::OnFailure { max_retries } => max_retries,
            _ => 0,
        };
        let host_config = InspectHostConfig {
            binds: list(&binds),
            container_id_file: String::new(),
            log_config: json!({"Type": "json-file", "Config": {}}),
            network_mode: h.network.clone(),
            port_bindings: json!({}),
            restart_policy: json!({"Name": h.restart.name(), "MaximumRetryCount": max_retries}),
            auto_remove: h.auto_remove,
            volume_driver: String::new(),
            volumes_from: None,
            cap_add: list(&h.cap_add),
            cap_drop: list(&h.cap_drop),
            dns: Vec::new(),
            dns_options: Vec::new(),
            dns_search: Vec::new(),
            extra_hosts: list(
                &h.extra_hosts
                    .iter()
                    .map(|(n, ip)| format!("{n}:{ip}"))
                    .collect::<Vec<_>>(),
            ),
            ipc_mode: "private".into(),
            privileged: h.privileged,
            readonly_rootfs: h.read_only,
            security_opt: list(&h.security_opt),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            runtime: h.runtime.as_deref().map_or("kiln".to_string(), path),
            memory: h.memory.unwrap_or(0),
            nano_cpus: h.nano_cpus.unwrap_or(0),
            pids_limit: h.pids_limit,
            init: h.init.then_some(true),
        };
        let as_set = |keys: &[String]| -> Value {
            if keys.is_empty() {
                return Value::Null;
            }
            Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect())
        };
        let config = InspectConfig {
            hostname: p.hostname.clone(),
            domainname: String::new(),
            user: p.user.clone(),
            attach_stdin: false,
            attach_stdout: false,
            attach_stderr: false,
            exposed_ports: (!p.exposed_ports.is_empty()).then(|| as_set(&p.exposed_ports)),
            tty: p.tty,
            open_stdin: p.open_stdin,
            stdin_once: false,
            env: list(&p.env),
            cmd: p.cmd.clone(),
            healthcheck: p.healthcheck.as_ref().map(healthcheck),
            image: cfg.image.clone(),
            volumes: as_set(&p.volumes),
            working_dir: p.working_dir.clone(),
            entrypoint: p.entrypoint.clone(),
            on_build: p.on_build.clone(),
            labels: p.labels.clone(),
            stop_signal: p.stop_signal.clone(),
            stop_timeout: p.stop_timeout,
        };
        Ok(ContainerInspect {
            id: cfg.id.clone(),
            created: go_time(Some(&cfg.created)),
            path: p.path.clone(),
            args: p.args.clone(),
            state,
            image: cfg.image_id.clone(),
            resolv_conf_path: path(&bundle.join("resolv.conf")),
            hostname_path: path(&bundle.join("hostname")),
            hosts_path: path(&bundle.join("hosts")),
            log_path: path(&self.containers.log_path(&cfg.id)),
            name: format!("/{}", cfg.name),
            restart_count: s.restart_count,
            driver: String::new(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: None,
            host_config,
            graph_driver: self.graph_driver(c),
            size_rw: None,
            size_root_fs: None,
            mounts,
            config,
            network_settings: crate::net_settings::network_settings(c),
        })
        .map(|mut doc| {
            doc.driver = doc.graph_driver.name.clone();
            doc
        })
    }

    /// The bytes in container `c`'s writable layer (docker's `SizeRw`).
    pub fn size_rw(&self, c: &Container) -> Result<u64> {
        Ok(open_snapshotter(&self.root)?
            .usage(&c.config.snapshot)?
            .size)
    }

    /// The writable layer's directories as the snapshotter mounts them.
    fn graph_driver(&self, c: &Container) -> GraphDriver {
        let mut data = BTreeMap::new();
        let snaps = open_snapshotter(&self.root);
        let name = match snaps.as_ref().map(|s| s.backend()) {
            Ok(kiln_snapshot::Backend::Overlay) => "overlay",
            Ok(kiln_snapshot::Backend::Native) => "native",
            Err(_) => "",
        };
        let merged = self.containers.dir_of(c.id()).join("rootfs");
        let mounts = snaps.and_then(|s| Ok(s.mounts(&c.config.snapshot)?));
        for m in mounts.unwrap_or_default() {
            if m.kind == "overlay" {
                for o in &m.options {
                    for (key, field) in [
                        ("lowerdir=", "LowerDir"),
                        ("upperdir=", "UpperDir"),
                        ("workdir=", "WorkDir"),
                    ] {
                        if let Some(v) = o.strip_prefix(key) {
                            data.insert(field.to_string(), v.to_string());
                        }
                    }
                }
                data.insert("MergedDir".into(), merged.to_string_lossy().into_owned());
            } else {
                // The native backend's root is a directory of its own.
                data.insert("MergedDir".into(), m.source.to_string_lossy().into_owned());
            }
        }
        GraphDriver {
            data,
            name: name.into(),
        }
    }
}

fn ro_suffix(read_only: bool) -> &'static str {
    if read_only {
        ":ro"
    } else {
        ""
    }
}

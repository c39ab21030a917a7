//! `docker commit`: a container's changes as a new image — its image's
//! layers plus one layer of what the container changed (the build's
//! reproducible layer writer, the container's writable layer left as it
//! was), and the image's config with the container's own settings, then
//! `--change` instructions through the one config editor.
//!
//! A running container is paused while its layer is written, as docker's
//! `--pause` (the default) does: its cgroup is frozen (the runtime
//! interface has no pause; see `cgroup`), and thawed once the layer is in
//! the store. With `--pause=false` its files are read as they change.

use std::collections::BTreeMap;
use std::time::SystemTime;

use kiln_core::image::{HealthConfig, HealthConfigFields, History, HistoryFields, ImageConfig};
use kiln_core::{Digest, ImageRef};
use kiln_layer::TarOptions;
use kiln_store::Store;
use serde_json::Value;

use crate::containers::Container;
use crate::diff::without_mountpoints;
use crate::engine::{open_snapshotter, Engine};
use crate::error::{ContainerError, Result};
use crate::record::{ProcessConfig, Status};

/// What `commit` was asked besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-a`.
    pub author: Option<String>,
    /// `-m`: the image's comment and its history entry's.
    pub message: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// `REPO[:TAG]`; none leaves the image untagged.
    pub names: Vec<ImageRef>,
    /// `-p`: freeze a running container while its layer is written.
    pub pause: bool,
}

/// The container's settings over the image's (docker's commit takes the
/// container's config): what runs, its environment, user, directory,
/// labels, stop signal, volumes, ports, ONBUILD.
fn container_settings(config: &mut ImageConfig, p: &ProcessConfig) {
    let cc = config.container_mut();
    if cc.entrypoint != p.entrypoint || cc.cmd != p.cmd {
        // ArgsEscaped described the image's own command line.
        cc.args_escaped = None;
    }
    cc.entrypoint = p.entrypoint.clone();
    cc.cmd = p.cmd.clone();
    cc.env = (!p.env.is_empty()).then(|| p.env.clone());
    cc.user = (!p.user.is_empty()).then(|| p.user.clone());
    cc.working_dir = (!p.working_dir.is_empty()).then(|| p.working_dir.clone());
    cc.labels = (!p.labels.is_empty()).then(|| p.labels.clone());
    if p.stop_signal.is_some() {
        cc.stop_signal = p.stop_signal.clone();
    }
    let set = |paths: &[String]| -> Option<BTreeMap<String, Value>> {
        (!paths.is_empty()).then(|| {
            paths
                .iter()
                .map(|v| (v.clone(), Value::Object(Default::default())))
                .collect()
        })
    };
    cc.volumes = set(&p.volumes);
    cc.exposed_ports = set(&p.exposed_ports);
    cc.on_build = p.on_build.clone();
    let image_test = cc.healthcheck.as_ref().and_then(|h| h.test.clone());
    match &p.healthcheck {
        // The image's, with the defaults `run` filled in.
        Some(h) if image_test.as_ref() == Some(&h.test) => {}
        // `--health-cmd`: what was given (defaults stay implicit, as docker
        // stores them).
        Some(h) => {
            let second = 1_000_000_000;
            let given = |v: i64, default: i64| (v != default).then_some(v);
            cc.healthcheck = Some(HealthConfig::new(HealthConfigFields {
                test: Some(h.test.clone()),
                interval: given(h.interval, 30 * second),
                timeout: given(h.timeout, 30 * second),
                start_period: given(h.start_period, 0),
                retries: given(h.retries, 3),
                ..Default::default()
            }))
        }
        // `--no-healthcheck` over an image's check.
        None if image_test
            .as_ref()
            .is_some_and(|t| t.first().is_some_and(|w| w != "NONE")) =>
        {
            cc.healthcheck = Some(HealthConfig::new(HealthConfigFields {
                test: Some(vec!["NONE".into()]),
                ..Default::default()
            }))
        }
        None => {}
    }
}

impl Engine {
    /// Commits container `c` (running or not) as a new image; its ID (the
    /// config digest).
    pub fn commit(&self, store: &Store, c: &Container, opts: &CommitOptions) -> Result<Digest> {
        let bad = |what: &str, e: String| ContainerError::InvalidConfig(format!("{what}: {e}"));
        let manifest_digest: Digest = c
            .config
            .image_manifest
            .parse()
            .map_err(|e: kiln_core::DigestError| bad("the container's image", e.to_string()))?;
        // Until the image is named, the store keeps its blobs.
        let _lease = store.lease()?;
        let manifest = store.read_manifest(&manifest_digest)?;
        let base = store.blobs().read(&manifest.config.digest)?;
        let mut config =
            ImageConfig::from_slice(&base).map_err(|e| bad("the container's image config", e))?;
        container_settings(&mut config, &c.config.process);
        kiln_archive::apply_changes(&mut config, &opts.changes)?;

        let snaps = open_snapshotter(&self.root)?;
        let frozen = match (opts.pause, c.state.status, c.state.pid) {
            (true, Status::Running, Some(pid)) => crate::cgroup::freeze(pid)?,
            _ => None,
        };
        let layer = kiln_snapshot::layer_from_active(
            &snaps,
            store,
            &c.config.snapshot,
            &TarOptions::default(),
            |changes| without_mountpoints(changes, &c.config),
        )?;
        drop(frozen);
        let created = kiln_core::rfc3339(SystemTime::now());
        config.created = Some(created.clone());
        config.author = opts.author.clone().filter(|a| !a.is_empty());
        match opts.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => config
                .rest
                .insert("comment".into(), Value::String(m.into())),
            None => config.rest.remove("comment"),
        };
        let mut layers = manifest.layers.clone();
        if let Some(l) = &layer {
            let rootfs = config.rootfs.get_or_insert_with(Default::default);
            rootfs.kind.get_or_insert_with(|| "layers".into());
            rootfs
                .diff_ids
                .get_or_insert_with(Vec::new)
                .push(l.diff_id.to_string());
            layers.push(l.descriptor.clone());
        }
        let author = config.author.clone();
        config
            .history
            .get_or_insert_with(Vec::new)
            .push(History::new(HistoryFields {
                created: Some(created),
                // docker: the container's Cmd, joined by spaces.
                created_by: Some(c.config.process.cmd.clone().unwrap_or_default().join(" ")),
                author,
                comment: opts.message.clone().filter(|m| !m.is_empty()),
                empty_layer: layer.is_none().then_some(true),
                rest: Default::default(),
            }));
        // docker records the container and its config as they were.
        let container_config = serde_json::to_value(self.inspect(c)?.config)
            .map_err(|e| bad("the container's config", e.to_string()))?;
        config
            .rest
            .insert("container".into(), Value::String(c.config.id.clone()));
        config
            .rest
            .insert("container_config".into(), container_config);
        let bytes = config.to_bytes();
        let entry = store.write_image(&bytes, &layers)?;
        store.name_image(&entry, &opts.names)?;
        Ok(Digest::sha256(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containers_settings_replace_the_images() {
        let mut config = ImageConfig::from_slice(
            br#"{"config":{"Cmd":["sh"],"ArgsEscaped":true,"Env":["A=1"],"Shell":["/bin/ash","-c"]}}"#,
        )
        .unwrap_or_default();
        let p = ProcessConfig {
            cmd: Some(vec!["echo".into(), "hi".into()]),
            env: vec!["A=1".into(), "B=2".into()],
            working_dir: "/srv".into(),
            volumes: vec!["/data".into()],
            ..Default::default()
        };
        container_settings(&mut config, &p);
        let with_check = ProcessConfig {
            healthcheck: Some(crate::record::Healthcheck {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: 5_000_000_000,
                timeout: 30_000_000_000,
                start_period: 0,
                retries: 3,
            }),
            ..p.clone()
        };
        let mut checked = config.clone();
        container_settings(&mut checked, &with_check);
        assert_eq!(
            checked.to_value()["config"]["Healthcheck"],
            serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64})
        );
        let v = config.to_value();
        assert_eq!(
            v["config"],
            serde_json::json!({
                "Cmd": ["echo", "hi"],
                "Env": ["A=1", "B=2"],
                "Shell": ["/bin/ash", "-c"],
                "Volumes": {"/data": {}},
                "WorkingDir": "/srv",
            })
        );
    }
}

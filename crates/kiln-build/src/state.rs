//! A stage's image as it is built: the config document (docker's image
//! config JSON, kept as JSON so fields kiln does not model survive from
//! the base image), the layers, and the cache key so far.

use kiln_core::image::Descriptor;
use kiln_core::image::ImageConfig;
use kiln_core::Digest;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The image config document.
    pub config: Value,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// Cache key of everything so far (hex sha256).
    pub key: String,
    /// The top snapshot when the stage's latest layers are snapshots only
    /// (a stage no exported image contains): its files are there, and
    /// `layers`/`diff_ids` stop below them.
    pub snapshot_top: Option<String>,
    /// A CMD instruction ran in this stage (ENTRYPOINT then keeps it;
    /// otherwise ENTRYPOINT drops the CMD inherited from the base, as
    /// docker does).
    pub cmd_set: bool,
}

pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl StageState {
    /// `FROM scratch`.
    pub(crate) fn scratch(os: &str, architecture: &str, variant: Option<&str>) -> StageState {
        let mut config = json!({
            "architecture": architecture,
            "os": os,
            // BuildKit's empty image: PATH set and `/` as working directory.
            "config": {"Env": [DEFAULT_PATH], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        StageState {
            config,
            layers: Vec::new(),
            diff_ids: Vec::new(),
            key: crate::cache::scratch_key(os, architecture, variant),
            snapshot_top: None,
            cmd_set: false,
        }
    }

    /// The `config` object (Env, Cmd, …), created when missing.
    pub(crate) fn cfg(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        match self.config["config"].as_object_mut() {
            Some(m) => m,
            None => unreachable!("just made an object"),
        }
    }

    /// Edits the config document through the model's typed, lossless
    /// view (what the view does not model is kept byte for byte).
    pub(crate) fn edit_config(&mut self, f: impl FnOnce(&mut ImageConfig)) {
        // The document is always an object (FROM makes it one), so the
        // view always parses; were it not, the config is left untouched.
        if let Ok(mut cfg) = ImageConfig::from_value(self.config.clone()) {
            f(&mut cfg);
            self.config = cfg.to_value();
        }
    }

    pub(crate) fn env(&self) -> Vec<String> {
        strings(&self.config["config"]["Env"])
    }

    /// The working directory RUN and COPY use: the config's, cleaned (the
    /// config keeps an absolute WORKDIR as written, as docker does).
    pub(crate) fn working_dir(&self) -> String {
        match self.config["config"]["WorkingDir"].as_str() {
            Some(w) if !w.is_empty() => crate::paths::clean_abs(w),
            _ => "/".to_string(),
        }
    }

    pub(crate) fn user(&self) -> String {
        self.config["config"]["User"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub(crate) fn shell(&self) -> Vec<String> {
        let s = strings(&self.config["config"]["Shell"]);
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    /// Adds a history entry; `layer` tells whether it made a layer.
    pub(crate) fn history(&mut self, created: &str, created_by: String, layer: bool) {
        let mut h = json!({
            "created": created,
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if !layer {
            h["empty_layer"] = json!(true);
        }
        if !self.config["history"].is_array() {
            self.config["history"] = json!([]);
        }
        if let Some(list) = self.config["history"].as_array_mut() {
            list.push(h);
        }
    }

    pub(crate) fn push_layer(&mut self, layer: Descriptor, diff_id: Digest) {
        self.layers.push(layer);
        self.diff_ids.push(diff_id);
        self.config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": self.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        });
    }
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

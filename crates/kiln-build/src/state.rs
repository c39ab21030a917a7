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

/// Makes a base image's config say the variant of the platform the stage
/// is built for. The config comes from the base, whose `variant` may be
/// missing (Debian's arm images, an `import`) or another one (an armv6
/// image chosen for a `linux/arm/v7` target by a variant-less manifest):
/// the image being built is for the target, so a target that names a
/// variant sets it and drops the inherited one. A target without a
/// variant keeps what the base says (`linux/arm64` matches `v8`), and
/// arm64/v8 is no variant to impose.
pub(crate) fn set_target_variant(config: &mut Value, platform: &kiln_core::Platform) {
    let Some(variant) = &platform.variant else {
        return;
    };
    // arm64's v8 is the default containerd normalises away (the host
    // platform of an arm64 machine says it): no variant to impose.
    if platform.architecture == "arm64" && variant == "v8" {
        return;
    }
    // Only for a config of the target's CPU: a `--platform=$BUILDPLATFORM`
    // stage's base is the host's, and its own platform is the host's too.
    if config["architecture"].as_str() != Some(platform.architecture.as_str()) {
        return;
    }
    if let Some(top) = config.as_object_mut() {
        top.insert("variant".into(), json!(variant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::Platform;

    fn arm(variant: Option<&str>) -> Value {
        let mut c = json!({"architecture": "arm", "os": "linux", "config": {}});
        if let Some(v) = variant {
            c["variant"] = json!(v);
        }
        c
    }

    #[test]
    fn a_target_variant_is_set_and_replaces_a_wrong_inherited_one() {
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        for inherited in [None, Some("v6"), Some("v7")] {
            let mut c = arm(inherited);
            set_target_variant(&mut c, &v7);
            assert_eq!(c["variant"], "v7", "inherited {inherited:?}");
            // The rest of the config is the base's.
            assert_eq!(c["architecture"], "arm");
            assert_eq!(c["os"], "linux");
        }
    }

    #[test]
    fn a_target_without_variant_or_of_another_cpu_leaves_the_config() {
        let mut c = arm(Some("v6"));
        set_target_variant(&mut c, &"linux/arm".parse().unwrap());
        assert_eq!(c["variant"], "v6");
        let mut c = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
        set_target_variant(&mut c, &"linux/arm64".parse().unwrap());
        assert_eq!(c["variant"], "v8");
        let mut c = json!({"architecture": "arm64", "os": "linux"});
        set_target_variant(&mut c, &"linux/arm64/v8".parse().unwrap());
        assert!(c.get("variant").is_none(), "{c}");
        // A host-platform stage's config is not the target's to change.
        let mut c = json!({"architecture": "amd64", "os": "linux"});
        set_target_variant(&mut c, &"linux/arm/v7".parse().unwrap());
        assert!(c.get("variant").is_none(), "{c}");
    }
}

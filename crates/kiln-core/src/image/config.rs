//! The image config (`application/vnd.oci.image.config.v1+json`, docker's
//! `container.image.v1+json`), typed where kiln reads or edits it, and
//! lossless everywhere else.
//!
//! Lossless matters: an image ID is the digest of these bytes, and kiln
//! edits configs it did not write (a build's base image, `import
//! --change`). So every typed struct here keeps three things besides its
//! fields: the fields it does not model (`rest`), fields present as `null`
//! (docker writes `"Cmd": null`; absent and `null` are different bytes),
//! and known fields whose value has an unexpected type (kept as they were
//! rather than failing the whole document). Serialization goes through a
//! `serde_json::Value`, whose maps sort their keys: that is the order every
//! config kiln writes has always had, so no image ID changes.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DiffId;

/// The shell a shell-form command runs in when the config names none.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A typed struct with a `rest` of unknown fields (see [`Lenient`]).
pub trait Fields: Serialize + DeserializeOwned + Default {
    fn rest(&self) -> &Map<String, Value>;
}

/// `T` read leniently and written back byte-for-byte (see the module doc).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lenient<T> {
    value: T,
    /// Known fields that were `null`: written as `null` again while unset.
    nulls: BTreeSet<String>,
    /// Known fields of the wrong type, kept verbatim while unset.
    misfits: Map<String, Value>,
}

impl<T: Fields> Lenient<T> {
    pub fn new(value: T) -> Lenient<T> {
        Lenient {
            value,
            nulls: BTreeSet::new(),
            misfits: Map::new(),
        }
    }

    /// Forgets what was read for `key` (a `null` or a value of another
    /// type), so an unset field is then absent: how an instruction removes
    /// a field (ENTRYPOINT dropping an inherited CMD).
    pub fn forget(&mut self, key: &str) {
        self.nulls.remove(key);
        self.misfits.remove(key);
    }

    pub fn from_value(v: Value) -> Result<Lenient<T>, String> {
        let Value::Object(mut map) = v else {
            return Err("not a JSON object".to_string());
        };
        let mut misfits = Map::new();
        let value: T = match serde_json::from_value(Value::Object(map.clone())) {
            Ok(t) => t,
            Err(_) => {
                // Set aside each known field that does not parse alone.
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let mut one = Map::new();
                    if let Some(v) = map.get(&k) {
                        one.insert(k.clone(), v.clone());
                    }
                    if serde_json::from_value::<T>(Value::Object(one)).is_err() {
                        if let Some(v) = map.remove(&k) {
                            misfits.insert(k, v);
                        }
                    }
                }
                serde_json::from_value(Value::Object(map.clone())).map_err(|e| e.to_string())?
            }
        };
        // A null the typed struct swallowed (it is not in `rest`) was a
        // known field.
        let nulls = map
            .iter()
            .filter(|(k, v)| v.is_null() && !value.rest().contains_key(*k))
            .map(|(k, _)| k.clone())
            .collect();
        Ok(Lenient {
            value,
            nulls,
            misfits,
        })
    }

    pub fn to_value(&self) -> Value {
        let mut v = match serde_json::to_value(&self.value) {
            Ok(Value::Object(m)) => m,
            // Every `Fields` type is a struct of plain data.
            _ => Map::new(),
        };
        for (k, x) in &self.misfits {
            v.entry(k.clone()).or_insert_with(|| x.clone());
        }
        for k in &self.nulls {
            v.entry(k.clone()).or_insert(Value::Null);
        }
        Value::Object(v)
    }
}

impl<T> Deref for Lenient<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Lenient<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Fields> Serialize for Lenient<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de, T: Fields> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Lenient::from_value(v).map_err(serde::de::Error::custom)
    }
}

macro_rules! fields {
    ($t:ty) => {
        impl Fields for $t {
            fn rest(&self) -> &Map<String, Value> {
                &self.rest
            }
        }
    };
}

/// The image config document.
pub type ImageConfig = Lenient<ImageConfigFields>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfigFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<History>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
fields!(ImageConfigFields);

impl ImageConfig {
    /// Parses config bytes (kept by the caller: the image ID is their digest).
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Lenient::from_value(v)
    }

    /// The bytes kiln writes for this config: keys sorted, compact.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A Value of strings, numbers, maps and lists always serializes.
        serde_json::to_vec(&self.to_value()).unwrap_or_default()
    }

    /// The `config` object, created empty when missing.
    pub fn container_mut(&mut self) -> &mut ContainerConfig {
        if self.config.is_none() {
            self.forget("config");
        }
        self.config.get_or_insert_with(ContainerConfig::default)
    }

    /// The `config` object, or an empty one.
    pub fn container(&self) -> ContainerConfig {
        self.config.clone().unwrap_or_default()
    }

    /// The layers' diff_ids, bottom first (unparsable entries skipped: the
    /// config's digest still names it, and the layer check reports them).
    pub fn diff_ids(&self) -> Vec<DiffId> {
        self.rootfs
            .as_ref()
            .and_then(|r| r.diff_ids.as_ref())
            .map(|ids| {
                ids.iter()
                    .filter_map(|d| d.parse().ok().map(DiffId))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The runtime defaults of an image (docker's `Config`).
pub type ContainerConfig = Lenient<ContainerConfigFields>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfigFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
fields!(ContainerConfigFields);

impl ContainerConfigFields {
    pub fn env(&self) -> &[String] {
        self.env.as_deref().unwrap_or_default()
    }

    /// The shell for shell-form commands: SHELL's, else `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        match &self.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// HEALTHCHECK's settings; durations in nanoseconds, as docker stores them.
pub type HealthConfig = Lenient<HealthConfigFields>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfigFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
fields!(HealthConfigFields);

/// `rootfs`: the layers' diff_ids (strings, kept as written).
pub type RootFs = Lenient<RootFsFields>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFsFields {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_ids: Option<Vec<String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
fields!(RootFsFields);

/// One `history` entry.
pub type History = Lenient<HistoryFields>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
fields!(HistoryFields);

//! The containers directory (`<store>/containers/<id>/`): records by ID,
//! lookup by ID, unique ID prefix or name, names kept unique under a lock,
//! state updates under a per-container lock and written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{io, ContainerError, Result};
use crate::record::{ContainerConfig, State};

/// One container: what it is and what is true of it now.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: State,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.config.id
    }
    pub fn short_id(&self) -> &str {
        &self.config.id[..12.min(self.config.id.len())]
    }
}

#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

const CONFIG: &str = "config.json";
const STATE: &str = "state.json";

/// A held `flock`; released on drop (with the file).
#[derive(Debug)]
pub(crate) struct Locked(#[allow(dead_code)] fs::File);

fn lock_file(path: &Path) -> Result<Locked> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io("open", path))?;
    flock(&f, FlockOperation::LockExclusive).map_err(|e| ContainerError::Io {
        action: "lock",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(Locked(f))
}

/// Writes `bytes` to `path` through a unique temporary file and a rename:
/// a reader sees the old content or the new, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io("create a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(io("write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| ContainerError::Io {
            action: "write",
            path: path.to_path_buf(),
            source: e.error,
        })
        .map(drop)
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

/// A new container ID: 64 random hex digits (never all digits, so it is
/// never mistaken for a number, as docker ensures).
pub fn new_id() -> Result<String> {
    loop {
        let mut bytes = [0u8; 32];
        let mut f = fs::File::open("/dev/urandom").map_err(io("open", "/dev/urandom"))?;
        std::io::Read::read_exact(&mut f, &mut bytes).map_err(io("read", "/dev/urandom"))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if id[..12].bytes().any(|c| c.is_ascii_alphabetic()) {
            return Ok(id);
        }
    }
}

impl Containers {
    /// The containers of the store at `store_root`.
    pub fn open(store_root: &Path) -> Result<Containers> {
        let dir = store_root.join("containers");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Containers { dir })
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// docker's json-file log of container `id`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir_of(id).join(format!("{id}-json.log"))
    }

    /// The lock that keeps names unique.
    fn names_lock(&self) -> Result<Locked> {
        lock_file(&self.dir.join(".names.lock"))
    }

    /// Holds container `id`'s state lock.
    pub(crate) fn lock(&self, id: &str) -> Result<Locked> {
        lock_file(&self.dir_of(id).join(".lock"))
    }

    /// Records a new container (state `created`); its name must be free.
    pub fn create(&self, config: &ContainerConfig) -> Result<()> {
        if !valid_name(&config.name) {
            return Err(ContainerError::InvalidName(config.name.clone()));
        }
        let _names = self.names_lock()?;
        if let Some(other) = self.by_name(&config.name)? {
            return Err(ContainerError::NameInUse {
                name: config.name.clone(),
                id: other,
            });
        }
        let dir = self.dir_of(&config.id);
        // Written under a temporary name and renamed: a listing never sees
        // a container without its config.
        let tmp = self.dir.join(format!(".new-{}", config.id));
        fs::create_dir(&tmp).map_err(io("create", &tmp))?;
        let write = || -> Result<()> {
            write_atomic(&tmp.join(CONFIG), &to_json(config))?;
            write_atomic(&tmp.join(STATE), &to_json(&State::default()))?;
            fs::rename(&tmp, &dir).map_err(io("create", &dir))
        };
        write().inspect_err(|_| {
            let _ = fs::remove_dir_all(&tmp);
        })
    }

    /// The ID of the container named `name`.
    fn by_name(&self, name: &str) -> Result<Option<String>> {
        self.by_name_among(&self.ids()?, name)
    }

    /// The ID among `ids` of the container named `name`.
    fn by_name_among(&self, ids: &[String], name: &str) -> Result<Option<String>> {
        for id in ids {
            if let Ok(c) = self.read_config(id) {
                if c.name == name {
                    return Ok(Some(id.clone()));
                }
            }
        }
        Ok(None)
    }

    /// Every container's ID (unordered).
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("read", &self.dir))? {
            let e = e.map_err(io("read", &self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    fn read_config(&self, id: &str) -> Result<ContainerConfig> {
        let p = self.dir_of(id).join(CONFIG);
        let bytes = fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ContainerError::NotFound(id.to_string()),
            _ => io("read", &p)(e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ContainerError::InvalidConfig(format!(
                "{}: unreadable container record ({e})",
                p.display()
            ))
        })
    }

    fn read_state(&self, id: &str) -> Result<State> {
        let p = self.dir_of(id).join(STATE);
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ContainerError::InvalidConfig(format!(
                    "{}: unreadable container state ({e})",
                    p.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ContainerError::NotFound(id.to_string()))
            }
            Err(e) => Err(io("read", &p)(e)),
        }
    }

    /// Container `id` as recorded (the state as last written; see
    /// `Engine::get` for the state reconciled with living processes).
    pub fn load(&self, id: &str) -> Result<Container> {
        Ok(Container {
            config: self.read_config(id)?,
            state: self.read_state(id)?,
        })
    }

    /// Every container, newest first (docker's `ps` order).
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut all = Vec::new();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(c) => all.push(c),
                // Removed while listing.
                Err(ContainerError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        all.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        Ok(all)
    }

    /// What the user typed, as docker resolves it: a full ID, a name (with
    /// or without `/`), or a unique ID prefix.
    pub fn find(&self, input: &str) -> Result<String> {
        let name = input.strip_prefix('/').unwrap_or(input);
        if name.is_empty() {
            return Err(ContainerError::NotFound(input.to_string()));
        }
        let ids = self.ids()?;
        if ids.iter().any(|i| i == name) {
            return Ok(name.to_string());
        }
        if let Some(id) = self.by_name_among(&ids, name)? {
            return Ok(id);
        }
        let matches: Vec<&String> = ids.iter().filter(|i| i.starts_with(name)).collect();
        match matches.len() {
            0 => Err(ContainerError::NotFound(input.to_string())),
            1 => Ok(matches[0].clone()),
            count => Err(ContainerError::Ambiguous {
                prefix: input.to_string(),
                count,
            }),
        }
    }

    /// Changes container `id`'s state under its lock; returns the new one.
    pub fn update_state(&self, id: &str, f: impl FnOnce(&mut State)) -> Result<State> {
        let _l = self.lock(id)?;
        let mut state = self.read_state(id)?;
        f(&mut state);
        write_atomic(&self.dir_of(id).join(STATE), &to_json(&state))?;
        Ok(state)
    }

    /// Changes container `id`'s config under its lock (`network
    /// connect`/`disconnect`); returns the new one.
    pub fn update_config(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerConfig) -> Result<()>,
    ) -> Result<ContainerConfig> {
        let _l = self.lock(id)?;
        let mut config = self.read_config(id)?;
        f(&mut config)?;
        write_atomic(&self.dir_of(id).join(CONFIG), &to_json(&config))?;
        Ok(config)
    }

    /// `docker rename`.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        if !valid_name(new_name) {
            return Err(ContainerError::InvalidName(new_name.to_string()));
        }
        let _names = self.names_lock()?;
        if let Some(other) = self.by_name(new_name)? {
            return Err(ContainerError::NameInUse {
                name: new_name.to_string(),
                id: other,
            });
        }
        let mut config = self.read_config(id)?;
        config.name = new_name.to_string();
        write_atomic(&self.dir_of(id).join(CONFIG), &to_json(&config))
    }

    /// Deletes container `id`'s record and log (the caller removed its
    /// process, snapshot and volumes first). Renamed away first, so a
    /// crash half-way leaves no half record under the ID.
    pub fn remove_record(&self, id: &str) -> Result<()> {
        let dir = self.dir_of(id);
        let gone = self.dir.join(format!(".removing-{id}"));
        match fs::rename(&dir, &gone) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("remove", &dir)(e)),
        }
        fs::remove_dir_all(&gone).map_err(io("remove", &gone))
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Plain data: serializing cannot fail.
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::record::Status;

    fn config(id: &str, name: &str, created: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.to_string(),
            name: name.to_string(),
            created: created.to_string(),
            image: "busybox".into(),
            image_id: "sha256:0".into(),
            image_manifest: "sha256:1".into(),
            parent_snapshot: None,
            snapshot: format!("container-{id}"),
            process: Default::default(),
            host: Default::default(),
        }
    }

    /// The lean monitor's state writer (used when it cannot exec back
    /// into kiln) takes the same lock and writes a state this crate reads,
    /// every other field kept.
    #[test]
    fn the_lean_monitors_state_writer_is_compatible() {
        let t = tempfile::tempdir().unwrap();
        let cs = Containers::open(t.path()).unwrap();
        let id = format!("ab{}", "0".repeat(62));
        cs.create(&config(&id, "web", "2026-01-01T00:00:00Z"))
            .unwrap();
        let before = cs
            .update_state(&id, |s| {
                s.status = Status::Running;
                s.pid = Some(42);
                s.monitor = Some((7, 99));
                s.restart_count = 3;
                s.error = "a \"quoted\" } error".into();
                s.started_at = Some("2026-01-01T00:00:01.000000000Z".into());
                s.health = Some(crate::record::Health {
                    status: "healthy".into(),
                    failing_streak: 0,
                    log: vec![crate::record::HealthResult {
                        output: "]} {".into(),
                        ..Default::default()
                    }],
                });
            })
            .unwrap();
        let dir = cs.dir_of(&id);
        // Held by a writer here: the lean monitor waits for it.
        let held = cs.lock(&id).unwrap();
        let writer = std::thread::spawn(move || {
            kiln_monitor::update_state(
                &dir,
                &[
                    ("status", "\"exited\""),
                    ("exit_code", "137"),
                    ("pid", "null"),
                    ("finished_at", "\"2026-01-01T00:00:02.000000000Z\""),
                    ("monitor", "null"),
                ],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!writer.is_finished(), "the lean monitor ignored the lock");
        drop(held);
        writer.join().unwrap().unwrap();
        let after = cs.load(&id).unwrap().state;
        let mut expected = before;
        expected.status = Status::Exited;
        expected.exit_code = 137;
        expected.pid = None;
        expected.monitor = None;
        expected.finished_at = Some("2026-01-01T00:00:02.000000000Z".into());
        assert_eq!(after, expected);
    }

    #[test]
    fn names_are_unique_and_lookup_takes_ids_prefixes_and_names() {
        let t = tempfile::tempdir().unwrap();
        let cs = Containers::open(t.path()).unwrap();
        let a = format!("ab{}", "0".repeat(62));
        let b = format!("ac{}", "1".repeat(62));
        cs.create(&config(&a, "web", "2026-01-01T00:00:00Z"))
            .unwrap();
        cs.create(&config(&b, "db", "2026-01-02T00:00:00Z"))
            .unwrap();
        let e = cs
            .create(&config(&new_id().unwrap(), "web", "x"))
            .unwrap_err();
        assert!(
            e.to_string().contains("is already in use by container"),
            "{e}"
        );
        assert_eq!(cs.find("web").unwrap(), a);
        assert_eq!(cs.find("/db").unwrap(), b);
        assert_eq!(cs.find("ab").unwrap(), a);
        assert_eq!(cs.find(&b).unwrap(), b);
        assert!(matches!(
            cs.find("a"),
            Err(ContainerError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(cs.find("zz"), Err(ContainerError::NotFound(_))));
        assert!(matches!(
            cs.create(&config(&new_id().unwrap(), "-x", "x")),
            Err(ContainerError::InvalidName(_))
        ));
        // Newest first.
        let names: Vec<String> = cs
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.config.name)
            .collect();
        assert_eq!(names, ["db", "web"]);
        cs.rename(&a, "front").unwrap();
        assert_eq!(cs.find("front").unwrap(), a);
        assert!(cs.rename(&b, "front").is_err());
        let s = cs.update_state(&a, |s| s.status = Status::Running).unwrap();
        assert_eq!(s.status, Status::Running);
        assert_eq!(cs.load(&a).unwrap().state.status, Status::Running);
        cs.remove_record(&a).unwrap();
        assert!(matches!(cs.find("front"), Err(ContainerError::NotFound(_))));
    }

    #[test]
    fn ids_are_hex_and_never_all_digits_at_the_front() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(valid_name("a1") && valid_name("web_1.x-y"));
        assert!(!valid_name("a") && !valid_name("_a") && !valid_name("a/b"));
    }
}

//! `USER name[:group]` or `uid[:gid]` to ids, through the root
//! filesystem's `/etc/passwd` and `/etc/group`, as docker resolves it:
//! a numeric user need not exist; a name must; without a group, the
//! user's primary group from passwd (or gid 0 for an unknown numeric
//! uid); supplementary groups are the groups that list the user.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{io, ExecError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The user's home from passwd (for `HOME`), `/` when unknown.
    pub home: String,
}

impl User {
    pub fn root() -> User {
        User {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/root".into(),
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Larger account databases than this are not read (a hostile image could
/// point `/etc/passwd` at something endless).
const MAX_DB_BYTES: u64 = 16 << 20;

/// The text of `path` (relative, such as `etc/passwd`) in the image at
/// `rootfs`, resolved as the container will see it: every symlink on the
/// way, absolute or relative, and every `..` stay inside `rootfs`
/// (`openat2(RESOLVE_IN_ROOT)`), so an image whose `/etc/passwd` (or
/// `/etc`) links to `/` or a host path reads its own files, never the
/// host's. A missing file (or anything but a regular file) reads as empty,
/// as docker treats an image without `/etc/passwd`.
pub(crate) fn read_in_root(rootfs: &Path, path: &str) -> Result<String> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open the root filesystem", rootfs)(e.into()))?;
    let fd = match rustix::fs::openat2(
        &root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::ISDIR | Errno::NXIO) => {
            return Ok(String::new())
        }
        Err(e) => return Err(io("open", rootfs.join(path))(e.into())),
    };
    let file = std::fs::File::from(fd);
    let regular = file
        .metadata()
        .map_err(io("read", rootfs.join(path)))?
        .is_file();
    if !regular {
        return Ok(String::new());
    }
    let mut bytes = Vec::new();
    file.take(MAX_DB_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io("read", rootfs.join(path)))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The permission bits of directory `path` in the image at `rootfs`,
/// resolved as [`read_in_root`] resolves; `None` when it is not a
/// directory there.
pub(crate) fn dir_mode_in_root(rootfs: &Path, path: &str) -> Option<u32> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    Some(st.st_mode & 0o7777)
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn groups(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
        })
        .collect()
}

/// Resolves `spec` (empty means root) against `rootfs`.
pub fn resolve_user(spec: &str, rootfs: &Path) -> Result<User> {
    if spec.is_empty() {
        return Ok(User::root());
    }
    let err = |reason: String| ExecError::User {
        user: spec.to_string(),
        reason,
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(&read_in_root(rootfs, "etc/passwd")?);
    let (uid, name, primary, home) = match user_part.parse::<u32>() {
        Ok(uid) => match users.iter().find(|u| u.uid == uid) {
            Some(u) => (uid, Some(u.name.clone()), u.gid, u.home.clone()),
            None => (uid, None, 0, "/".to_string()),
        },
        Err(_) => match users.iter().find(|u| u.name == user_part) {
            Some(u) => (u.uid, Some(u.name.clone()), u.gid, u.home.clone()),
            None => {
                return Err(err(format!(
                    "unable to find user {user_part}: no matching entries in passwd file"
                )))
            }
        },
    };
    let all_groups = groups(&read_in_root(rootfs, "etc/group")?);
    let gid = match group_part {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| {
                    err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = match (&name, group_part) {
        (Some(n), None) => all_groups
            .iter()
            .filter(|(_, _, members)| members.contains(n))
            .map(|(_, gid, _)| *gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolves_like_docker() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n",
        )
        .unwrap();
        let u = |s: &str| resolve_user(s, root.path());
        assert_eq!(u("").unwrap(), User::root());
        let app = u("app").unwrap();
        assert_eq!(
            (
                app.uid,
                app.gid,
                app.additional_gids.clone(),
                app.home.as_str()
            ),
            (1000, 1000, vec![10], "/home/app")
        );
        assert_eq!(u("1000").unwrap().gid, 1000);
        assert_eq!((u("4242").unwrap().uid, u("4242").unwrap().gid), (4242, 0));
        assert_eq!(u("app:wheel").unwrap().gid, 10);
        assert_eq!(u("app:55").unwrap().additional_gids, Vec::<u32>::new());
        assert!(u("nobody")
            .unwrap_err()
            .to_string()
            .contains("unable to find user nobody: no matching entries in passwd file"));
        assert!(u("app:staff")
            .unwrap_err()
            .to_string()
            .contains("unable to find group staff: no matching entries in group file"));
    }

    /// A hostile image whose account files link out of it, absolutely or
    /// through `..`, must read its own files (or nothing), never the host's.
    #[test]
    fn account_files_resolve_inside_the_root() {
        use std::os::unix::fs::symlink;
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("secret");
        std::fs::create_dir(&secret).unwrap();
        std::fs::write(
            secret.join("passwd"),
            "hostuser:x:4242:4242::/host:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(secret.join("group"), "hostgroup:x:4343:hostuser\n").unwrap();
        let u = |root: &Path, s: &str| resolve_user(s, root);

        // /etc/passwd -> /<host path>/passwd: the image holds no such
        // file, so there is no user, and the host's is never read.
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        symlink(secret.join("passwd"), root.path().join("etc/passwd")).unwrap();
        symlink(secret.join("group"), root.path().join("etc/group")).unwrap();
        assert!(u(root.path(), "hostuser").is_err());
        assert!(u(root.path(), "0:hostgroup").is_err());
        assert_eq!(u(root.path(), "4242").unwrap().gid, 0);
        // With that path present inside the image, the image's file is read.
        let inside = root.path().join(secret.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::write(inside.join("passwd"), "imageuser:x:7:8::/img:/bin/sh\n").unwrap();
        assert_eq!(u(root.path(), "imageuser").unwrap().uid, 7);
        assert!(u(root.path(), "hostuser").is_err());

        // /etc -> the host directory (absolute), and /etc -> ../../.. (up
        // and out): both stay in the image, which has no passwd there.
        for target in [
            secret.clone(),
            std::path::PathBuf::from("../../../../../..").join(secret.strip_prefix("/").unwrap()),
        ] {
            let root = tempfile::tempdir().unwrap();
            symlink(&target, root.path().join("etc")).unwrap();
            assert!(u(root.path(), "hostuser").is_err(), "{target:?}");
            assert!(u(root.path(), "root:hostgroup").is_err(), "{target:?}");
        }
    }
}

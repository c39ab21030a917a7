//! `USER name[:group]` or `uid[:gid]` to ids, through the root
//! filesystem's `/etc/passwd` and `/etc/group`, as docker resolves it:
//! a numeric user need not exist; a name must; without a group, the
//! user's primary group from passwd (or gid 0 for an unknown numeric
//! uid); supplementary groups are the groups that list the user.

use std::path::Path;

use crate::error::{ExecError, Result};

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

fn passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
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
fn groups(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    let text = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
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
    let users = passwd(rootfs);
    let (uid, name, primary, home) = match user_part.parse::<u32>() {
        Ok(uid) => match users.iter().find(|u| u.uid == uid) {
            Some(u) => (uid, Some(u.name.clone()), u.gid, u.home.clone()),
            None => (uid, None, 0, "/".to_string()),
        },
        Err(_) => match users.iter().find(|u| u.name == user_part) {
            Some(u) => (u.uid, Some(u.name.clone()), u.gid, u.home.clone()),
            None => {
                return Err(err(format!(
                    "no user {user_part:?} in the image's /etc/passwd: create it in an earlier RUN or use a numeric uid"
                )))
            }
        },
    };
    let all_groups = groups(rootfs);
    let gid = match group_part {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| err(format!("no group {g:?} in the image's /etc/group")))?,
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
            .contains("no user \"nobody\""));
        assert!(u("app:staff")
            .unwrap_err()
            .to_string()
            .contains("no group \"staff\""));
    }
}

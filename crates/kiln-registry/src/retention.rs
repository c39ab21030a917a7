//! Tag retention: per repository pattern, keep the newest N tags and every
//! tag matching a keep pattern; the other tags are removed.
//!
//! [`tags_to_drop`] is the policy as a pure function over tags and the
//! times they were last pushed; the server applies it ([`apply`]) after
//! every manifest PUT, so retention holds without garbage collection, and
//! a GC sweep may call the same function for repositories nobody pushes
//! to. Removing a tag leaves its manifest untagged, for GC to collect.
//! Repositories with immutable tags are never trimmed: immutability wins.

use std::time::SystemTime;

use serde::Deserialize;

use crate::error::StorageError;
use crate::policy::glob;
use crate::storage::Storage;

/// One `[[policy.retention]]` entry. The first rule whose `repository`
/// pattern matches a repository is the one applied to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Repository pattern (`*` any run of characters, `?` one).
    pub repository: String,
    /// Keep this many of the most recently pushed tags (all when unset).
    pub keep_last: Option<usize>,
    /// Tag patterns always kept, not counted in `keep_last`.
    #[serde(default)]
    pub keep: Vec<String>,
}

/// The tags of `repo` that `rules` drop, given each tag's last push time
/// (newest first by time, ties broken by name so the answer is stable).
pub fn tags_to_drop(
    rules: &[RetentionRule],
    repo: &str,
    tags: &[(String, SystemTime)],
) -> Vec<String> {
    let Some(rule) = rules
        .iter()
        .find(|r| glob(r.repository.as_bytes(), repo.as_bytes()))
    else {
        return Vec::new();
    };
    let Some(keep_last) = rule.keep_last else {
        return Vec::new();
    };
    let mut counted: Vec<&(String, SystemTime)> = tags
        .iter()
        .filter(|(t, _)| !rule.keep.iter().any(|p| glob(p.as_bytes(), t.as_bytes())))
        .collect();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut drop: Vec<String> = counted
        .into_iter()
        .skip(keep_last)
        .map(|(t, _)| t.clone())
        .collect();
    drop.sort();
    drop
}

/// Applies `rules` to `repo` in `storage` (unless its tags are
/// immutable); returns the tags removed.
pub fn apply(
    storage: &dyn Storage,
    rules: &[RetentionRule],
    immutable: bool,
    repo: &str,
) -> Result<Vec<String>, StorageError> {
    if rules.is_empty() || immutable {
        return Ok(Vec::new());
    }
    let drop = tags_to_drop(rules, repo, &storage.tag_times(repo)?);
    let mut removed = Vec::new();
    for tag in drop {
        if storage.untag(repo, &tag)? {
            removed.push(tag);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn rule(repo: &str, keep_last: Option<usize>, keep: &[&str]) -> RetentionRule {
        RetentionRule {
            repository: repo.into(),
            keep_last,
            keep: keep.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn tags() -> Vec<(String, SystemTime)> {
        vec![
            ("a".into(), at(1)),
            ("b".into(), at(5)),
            ("latest".into(), at(2)),
            ("c".into(), at(3)),
            ("v1".into(), at(0)),
            ("d".into(), at(3)),
        ]
    }

    #[test]
    fn keeps_the_newest_and_the_protected() {
        let rules = [rule("ci/*", Some(2), &["latest", "v*"])];
        // Newest unprotected: b (5), then d and c tie at 3 (d wins by name).
        assert_eq!(tags_to_drop(&rules, "ci/app", &tags()), vec!["a", "c"]);
        let rules = [rule("*", Some(0), &[])];
        assert_eq!(tags_to_drop(&rules, "x", &tags()).len(), 6);
    }

    #[test]
    fn first_matching_rule_wins_and_others_are_untouched() {
        let rules = [rule("ci/keep", None, &[]), rule("ci/*", Some(1), &[])];
        assert!(tags_to_drop(&rules, "ci/keep", &tags()).is_empty());
        assert_eq!(tags_to_drop(&rules, "ci/x", &tags()).len(), 5);
        assert!(tags_to_drop(&rules, "prod/x", &tags()).is_empty());
        assert!(tags_to_drop(&[], "ci/x", &tags()).is_empty());
    }

    #[test]
    fn apply_untags_in_storage_but_not_immutable_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::FsStorage::open(dir.path()).unwrap();
        let d: kiln_core::Digest =
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                .parse()
                .unwrap();
        s.link_blob("r", &d).ok();
        for t in ["one", "two", "three"] {
            s.tag("r", t, &d).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let rules = [rule("r", Some(1), &["one"])];
        assert!(apply(&s, &rules, true, "r").unwrap().is_empty());
        assert_eq!(apply(&s, &rules, false, "r").unwrap(), vec!["two"]);
        assert_eq!(
            s.tags("r").unwrap().unwrap(),
            vec!["one".to_string(), "three".to_string()]
        );
    }
}

//! The build's timestamp when `SOURCE_DATE_EPOCH` is not given.
//!
//! Builds stay reproducible by default, but "56 years ago" on every image
//! surprises people. The reproducible-builds convention is to take the
//! commit time of the sources: when the context is inside a git work tree
//! whose tracked files under the context have no uncommitted changes, the
//! epoch is HEAD's commit time; otherwise it is 0. The same commit built
//! anywhere gives the same image ID, and the image says when its sources
//! were last changed.

use std::path::Path;
use std::process::{Command, Stdio};

/// Where the epoch of a build came from, for the build summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSource {
    /// `SOURCE_DATE_EPOCH` in the environment or as a build argument.
    SourceDateEpoch,
    /// The commit time of the context's git HEAD.
    GitCommit,
    /// Nothing said otherwise: 1970-01-01.
    Zero,
}

impl EpochSource {
    pub fn describe(self) -> &'static str {
        match self {
            EpochSource::SourceDateEpoch => "SOURCE_DATE_EPOCH",
            EpochSource::GitCommit => "the commit time of the context's git HEAD",
            EpochSource::Zero => {
                "0 (set SOURCE_DATE_EPOCH, or build a clean git checkout, for a real date)"
            }
        }
    }
}

/// HEAD's commit time (seconds) when `context` is in a git work tree with
/// no uncommitted changes to tracked files under it; `None` otherwise,
/// including when git is not installed.
pub fn git_commit_time(context: &Path) -> Option<u64> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(context)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if git(&["rev-parse", "--is-inside-work-tree"])?.trim() != "true" {
        return None;
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no", "--", "."])?;
    if !dirty.trim().is_empty() {
        return None;
    }
    git(&["log", "-1", "--format=%ct", "HEAD"])?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_DATE", "2024-05-06T07:08:09Z")
            .env("GIT_COMMITTER_DATE", "2024-05-06T07:08:09Z")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn commit_time_of_a_clean_checkout_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(git_commit_time(d), None, "not a repository");
        git(d, &["init", "-q"]);
        git(d, &["config", "user.email", "t@example.com"]);
        git(d, &["config", "user.name", "t"]);
        std::fs::write(d.join("a"), "1").unwrap();
        assert_eq!(git_commit_time(d), None, "no commit yet");
        git(d, &["add", "a"]);
        git(d, &["commit", "-q", "-m", "one"]);
        assert_eq!(git_commit_time(d), Some(1_714_979_289));
        // Untracked files do not count; a changed tracked file does.
        std::fs::write(d.join("new"), "x").unwrap();
        assert_eq!(git_commit_time(d), Some(1_714_979_289));
        std::fs::write(d.join("a"), "2").unwrap();
        assert_eq!(git_commit_time(d), None);
    }
}

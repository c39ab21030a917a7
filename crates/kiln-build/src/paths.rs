//! Paths inside the image, as COPY, ADD, WORKDIR and RUN --mount read
//! them: lexically cleaned, and resolved against a root filesystem the way
//! the image would see them (symlinks followed, never out of the root).

use std::fs;
use std::path::{Path, PathBuf};

/// Normalizes a path inside the image: absolute, `.`/`..` resolved
/// lexically, no trailing slash (except `/`). The same cleaner WORKDIR's
/// rule uses, in the config editor.
pub(crate) use kiln_dockerfile::config::clean_abs;

/// Resolves `path` inside `root` following symlinks as the image would
/// (absolute targets are relative to `root`; `..` never leaves it).
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut stack: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        stack.push(c);
        let host = root.join(stack.join("/"));
        let Ok(target) = fs::read_link(&host) else {
            continue;
        };
        hops += 1;
        if hops > 40 {
            break;
        }
        stack.pop();
        let t = target.to_string_lossy().into_owned();
        if t.starts_with('/') {
            stack.clear();
        }
        for part in t.split('/').rev() {
            todo.push(part.to_string());
        }
    }
    root.join(stack.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("real/up")).unwrap();
        assert_eq!(resolve_in_root(r, "/abs/dir"), r.join("real/dir"));
        assert_eq!(resolve_in_root(r, "real/up/passwd"), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "../../x"), r.join("x"));
        assert_eq!(clean_abs("a/./b/../c/"), "/a/c");
    }
}

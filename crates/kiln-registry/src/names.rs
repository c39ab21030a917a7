//! Names in URLs: repository names (the spec's grammar, so no name can
//! climb out of its directory), tags, upload ids, and which endpoint a
//! `/v2/...` path names (a repository name may hold slashes, so the path is
//! read from its end).

use kiln_core::Digest;

/// The spec's repository name grammar (kiln-core's, shared with image
/// references), at most 255 characters.
pub(crate) fn valid_name(name: &str) -> bool {
    kiln_core::valid_repository_name(name)
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Upload ids are 32 lowercase hex characters (made by the storage).
pub(crate) fn valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub(crate) fn parse(s: &str) -> Option<Reference> {
        if s.contains(':') {
            s.parse().ok().map(Reference::Digest)
        } else if valid_tag(s) {
            Some(Reference::Tag(s.to_string()))
        } else {
            None
        }
    }
}

/// The endpoint a path under `/v2/` names; the repository name is not yet
/// validated, the last segment is percent-decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Referrers { name: String, digest: String },
}

pub(crate) fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2/")?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart { name: name.into() });
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name: name.into() });
    }
    let (head, last) = rest.rsplit_once('/')?;
    let last = decode(last)?;
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(Route::Upload {
            name: name.into(),
            id: last,
        });
    }
    let (name, kind) = head.rsplit_once('/')?;
    let name = name.to_string();
    match kind {
        "manifests" => Some(Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar() {
        for ok in ["a", "library/busybox", "a.b_c__d---e/f0", "x/y/z", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a/./b",
            "-a",
            "a-",
            "a___b",
            "a._b",
            "a%2fb",
            "_blobs",
            "a b",
            "a/_manifests",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(valid_tag("latest") && valid_tag("_x") && valid_tag("1.0-rc_1"));
        assert!(!valid_tag("") && !valid_tag(".x") && !valid_tag("-x") && !valid_tag("a/b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn paths_are_read_from_their_end() {
        assert_eq!(
            route("/v2/a/b/manifests/latest"),
            Some(Route::Manifest {
                name: "a/b".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(
            route("/v2/a/blobs/blobs/sha256%3Aab"),
            Some(Route::Blob {
                name: "a/blobs".into(),
                digest: "sha256:ab".into()
            })
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/"),
            Some(Route::UploadStart { name: "a".into() })
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/0123"),
            Some(Route::Upload {
                name: "a".into(),
                id: "0123".into()
            })
        );
        assert_eq!(
            route("/v2/x/tags/list"),
            Some(Route::Tags { name: "x".into() })
        );
        assert_eq!(route("/v2/x/other/y"), None);
    }
}

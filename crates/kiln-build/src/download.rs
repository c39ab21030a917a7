//! `ADD https://…`: a remote file fetched for a build step.
//!
//! As docker does: the file lands with mode 0600 (unless `--chmod`), is
//! never extracted, is named after the URL's last path segment when the
//! destination is a directory, and takes its mtime from `Last-Modified`
//! (clamped to SOURCE_DATE_EPOCH when that is set). `--checksum=sha256:…`
//! is verified over every byte before the file is used. The cache key
//! holds the content's digest, so a changed remote file reruns the step.

use std::io::Write;
use std::path::{Path, PathBuf};

use kiln_core::error_chain;
use sha2::Digest as _;

use crate::error::{io, BuildError, Result};

/// A downloaded file, ready to be planned like a context file.
#[derive(Debug, Clone)]
pub(crate) struct Download {
    /// The URL's last path segment (may be empty).
    pub name: String,
    pub path: PathBuf,
    /// sha256 of the content, hex.
    pub digest: String,
    pub mtime: u64,
}

/// True for the sources ADD fetches over HTTP(S).
pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// True for git sources (not supported yet).
pub(crate) fn is_git(source: &str) -> bool {
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(source) && (source.ends_with(".git") || source.contains(".git#")))
}

/// Fetches `url` into a new file in `dir`.
pub(crate) fn download(
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
    epoch: u64,
    clamp: bool,
) -> Result<Download> {
    let want = match checksum {
        None => None,
        Some(c) => Some(
            c.strip_prefix("sha256:")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| {
                    BuildError::BadOption(format!(
                        "--checksum={c}: expected sha256:<64 hex digits>"
                    ))
                })?,
        ),
    };
    let fail = |problem: String| BuildError::Download {
        url: url.to_string(),
        problem,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("start the download runtime for", dir))?;
    let path = dir.join("download");
    let mut file = std::fs::File::create(&path).map_err(io("create", &path))?;
    let (digest, last_modified) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(format!("the server answered {}", resp.status())));
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(error_chain(&e)))? {
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io("write", &path))?;
        }
        Ok::<_, BuildError>((hex::encode(hasher.finalize()), last_modified))
    })?;
    if let Some(want) = want {
        if want != digest {
            return Err(fail(format!(
                "checksum mismatch: --checksum says sha256:{want}, the download is sha256:{digest}"
            )));
        }
    }
    let name = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
        })
        .unwrap_or_default();
    let mut mtime = last_modified.unwrap_or(epoch);
    if clamp {
        mtime = mtime.min(epoch);
    }
    Ok(Download {
        name,
        path,
        digest,
        mtime,
    })
}

/// RFC 7231's IMF-fixdate (`Tue, 15 Nov 1994 08:12:31 GMT`), the only
/// form servers are allowed to send.
fn parse_http_date(s: &str) -> Option<u64> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(s.trim(), &fmt).ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_dates_and_sources() {
        assert_eq!(
            parse_http_date("Tue, 15 Nov 1994 08:12:31 GMT"),
            Some(784887151)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        assert!(is_url("https://example.com/a.tgz"));
        assert!(!is_url("a.tgz"));
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file"));
    }
}

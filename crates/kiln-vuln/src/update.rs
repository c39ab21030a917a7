//! `kiln scan --update-db`: each ecosystem's `all.zip` from the OSV
//! bucket (or any mirror of its layout, a loopback server in the tests),
//! streamed to a temporary file beside the old one, checked to be a
//! readable zip of OSV records, then renamed over it, so a failed or
//! partial download never replaces a good database.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;

use crate::Error;

/// The public OSV bucket.
pub const DEFAULT_BASE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// What `--update-db` fetches without `--ecosystem`: the distros' whole
/// zips (every release in one) and the language ecosystems kiln matches.
pub const DEFAULT_ECOSYSTEMS: [&str; 7] = [
    "Debian",
    "Alpine",
    "Ubuntu",
    "PyPI",
    "npm",
    "Go",
    "crates.io",
];

/// An ecosystem name safe as one directory: no separators or dot-dot.
fn check_name(ecosystem: &str) -> Result<(), Error> {
    let ok = !ecosystem.is_empty()
        && ecosystem != "."
        && ecosystem != ".."
        && ecosystem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-' | '_' | ' '));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("ecosystem {ecosystem:?}"),
            "not an OSV ecosystem name (e.g. Debian:12, Alpine:v3.19, PyPI)",
        ))
    }
}

/// Downloads `<base>/<ecosystem>/all.zip` into `dir/<ecosystem>/all.zip`;
/// returns the path and its size.
pub async fn download(
    client: &reqwest::Client,
    base_url: &str,
    ecosystem: &str,
    dir: &Path,
) -> Result<(PathBuf, u64), Error> {
    check_name(ecosystem)?;
    let url = format!(
        "{}/{}/all.zip",
        base_url.trim_end_matches('/'),
        ecosystem.replace(' ', "%20")
    );
    let fail = |msg: String| Error::Download {
        url: url.clone(),
        msg,
    };
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(kiln_core::error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!(
            "HTTP {} (is {ecosystem:?} an OSV ecosystem? see the bucket's ecosystems.txt)",
            resp.status()
        )));
    }
    let target_dir = dir.join(ecosystem);
    std::fs::create_dir_all(&target_dir).map_err(|e| Error::io(&target_dir, e))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(&target_dir).map_err(|e| Error::io(&target_dir, e))?;
    let mut size = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fail(kiln_core::error_chain(&e)))?;
        size += chunk.len() as u64;
        tmp.write_all(&chunk)
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.flush().map_err(|e| Error::io(tmp.path(), e))?;
    // A zip that does not open is not installed.
    let file = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
    zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| fail(format!("not a zip ({size} bytes): {e}")))?;
    let target = target_dir.join("all.zip");
    tmp.persist(&target)
        .map_err(|e| Error::io(&target, e.error))?;
    Ok((target, size))
}

/// The HTTP client downloads use (rustls, the system's roots).
pub fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Download {
            url: DEFAULT_BASE_URL.into(),
            msg: kiln_core::error_chain(&e),
        })
}

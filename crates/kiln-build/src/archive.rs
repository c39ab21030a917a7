//! Tar archives a build reads whole: ADD's local archives and a context
//! sent on standard input (`kiln build - < ctx.tar.gz`). Both may be plain,
//! gzip, bzip2, xz or zstd, as docker accepts them.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::error::{BuildError, Result};

/// Whether the first bytes of a file are a tar archive docker would
/// extract: compressed (gzip, zstd, bzip2, xz) or a plain ustar/GNU tar.
pub fn looks_like_archive(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// The archive's tar stream, decompressed. gzip and zstd go through the
/// layer engine's decoder; bzip2 and xz, which layers never use, are
/// decoded here.
pub(crate) fn decompressed<'a, R: BufRead + Send + 'a>(
    mut r: R,
    what: &str,
) -> Result<Box<dyn Read + Send + 'a>> {
    let head = r
        .fill_buf()
        .map_err(|source| BuildError::BadArchive {
            what: format!("{what}: cannot read"),
            source,
        })?
        .to_vec();
    Ok(if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(r))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // lzma-rs decodes whole streams; these archives are read once.
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut r, &mut out).map_err(|e| BuildError::BadArchive {
            what: format!("{what}: bad xz archive"),
            source: std::io::Error::other(e.to_string()),
        })?;
        Box::new(std::io::Cursor::new(out))
    } else {
        kiln_layer::decompress(r)?.1
    })
}

/// Unpacks a build context archive into `dir` with the layer engine's
/// safe apply: no entry lands outside `dir`, whatever its path or links.
pub fn unpack_context<R: BufRead + Send>(r: R, dir: &Path) -> Result<()> {
    let tar = decompressed(r, "the context archive")?;
    kiln_layer::apply(
        std::io::BufReader::with_capacity(1 << 20, tar),
        dir,
        &kiln_layer::ApplyOptions::for_current_user(),
    )
    .map_err(|e| BuildError::BadArchive {
        what: "the context archive".into(),
        source: std::io::Error::other(e),
    })?;
    Ok(())
}

/// An archive's entries moved under `dest_dir` (a tar stream to apply).
/// gzip and zstd go through the layer engine's decoder; bzip2 and xz,
/// which layers never use, are decoded here.
pub(crate) fn retarget_archive<R: std::io::BufRead + Send>(
    r: R,
    dest_dir: &str,
) -> Result<Vec<u8>> {
    let plain = decompressed(r, "ADD")?;
    let base = crate::paths::clean_abs(dest_dir)
        .trim_start_matches('/')
        .to_string();
    let prefix = |p: &[u8]| -> Vec<u8> {
        let p = String::from_utf8_lossy(p);
        let p = p.trim_start_matches("./").trim_start_matches('/');
        if base.is_empty() {
            p.as_bytes().to_vec()
        } else {
            format!("{base}/{p}").into_bytes()
        }
    };
    let mut archive = tar::Archive::new(plain);
    let mut out = tar::Builder::new(Vec::new());
    let bad = |source: std::io::Error| BuildError::BadArchive {
        what: "ADD: reading the archive".into(),
        source,
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = prefix(&entry.path_bytes());
        let mut h = entry.header().clone();
        // Hard links name a path in the archive, which moves too; a
        // symlink's target is the link's own business.
        let link = match h.entry_type() {
            tar::EntryType::Link => entry.link_name_bytes().map(|t| prefix(&t)),
            t if t.is_symlink() => Some(
                entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        if let Some(target) = link {
            out.append_link(
                &mut h,
                String::from_utf8_lossy(&path).as_ref(),
                String::from_utf8_lossy(&target).as_ref(),
            )
            .map_err(bad)?;
            continue;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(bad)?;
        out.append_data(&mut h, String::from_utf8_lossy(&path).as_ref(), &data[..])
            .map_err(bad)?;
    }
    out.into_inner().map_err(bad)
}

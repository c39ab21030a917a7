//! Packages compiled into executables: a Go binary's build info (the
//! `.go.buildinfo` blob: main module, dependencies with `=>` replacements,
//! the toolchain as `stdlib`) and a Rust binary's cargo-auditable data
//! (the `.dep-v0` section: zlib-compressed JSON of the dependency tree).
//!
//! Go's blob is found by its 16-byte-aligned magic, with or without
//! section headers; only Go ≥ 1.18's inline-string form is read (older
//! binaries point into their data segment, which needs a loader; syft
//! reads them, kiln skips them). The `.dep-v0` section is found through
//! the ELF section table with the `object` crate.

use std::io::Read;

use object::{Object, ObjectSection};

use crate::package::{Found, PkgType};

const GO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// cargo-auditable caps its decompressed JSON at 8 MiB; so does kiln.
const AUDIT_LIMIT: u64 = 8 << 20;

/// Whether `head` (a file's first bytes) starts an ELF file.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// The packages compiled into the ELF executable `bytes`.
pub fn detect(bytes: &[u8]) -> Vec<Found> {
    let mut out = go(bytes);
    if out.is_empty() {
        out = rust(bytes);
    }
    out
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        x |= u64::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

fn varint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, k) = uvarint(b)?;
    let n = usize::try_from(n).ok()?;
    let s = b.get(k..k.checked_add(n)?)?;
    Some((s, &b[k + n..]))
}

/// Go's build info: (toolchain version, modinfo text).
pub fn go_buildinfo(bytes: &[u8]) -> Option<(String, String)> {
    // The blob is 16-byte aligned: only aligned offsets are compared.
    let pos = (0..bytes.len().saturating_sub(32))
        .step_by(16)
        .find(|&p| bytes[p..].starts_with(GO_MAGIC))?;
    let hdr = bytes.get(pos..pos + 32)?;
    // Flag bit 1: strings inline after the 32-byte header (Go ≥ 1.18).
    if hdr[15] & 2 == 0 {
        return None;
    }
    let (version, rest) = varint_string(&bytes[pos + 32..])?;
    let (modinfo, _) = varint_string(rest)?;
    // The module info is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    Some((
        String::from_utf8_lossy(version).into_owned(),
        String::from_utf8_lossy(modinfo).into_owned(),
    ))
}

fn go(bytes: &[u8]) -> Vec<Found> {
    let Some((version, modinfo)) = go_buildinfo(bytes) else {
        return Vec::new();
    };
    let mut out: Vec<Found> = Vec::new();
    for line in modinfo.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, ver, ..] => out.push(Found::new(PkgType::GoModule, *path, *ver)),
            ["=>", path, ver, ..] => {
                if let Some(last) = out.last_mut() {
                    last.name = path.to_string();
                    last.version = ver.to_string();
                }
            }
            _ => {}
        }
    }
    if !version.is_empty() {
        out.push(Found::new(PkgType::GoModule, "stdlib", version));
    }
    out
}

#[derive(serde::Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(serde::Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The JSON of a `.dep-v0` section, decompressed with a cap.
pub fn audit_json(bytes: &[u8]) -> Option<Vec<u8>> {
    let file = object::File::parse(bytes).ok()?;
    let section = file.section_by_name(".dep-v0")?;
    let data = section.data().ok()?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(AUDIT_LIMIT)
        .read_to_end(&mut json)
        .ok()?;
    Some(json)
}

fn rust(bytes: &[u8]) -> Vec<Found> {
    let Some(json) = audit_json(bytes) else {
        return Vec::new();
    };
    let Ok(audit) = serde_json::from_slice::<Audit>(&json) else {
        return Vec::new();
    };
    // Build-time dependencies are not in the binary (syft's rule too).
    audit
        .packages
        .into_iter()
        .filter(|p| p.kind.as_deref().unwrap_or("runtime") == "runtime")
        .map(|p| Found::new(PkgType::RustCrate, p.name, p.version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varstr(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(s);
        out
    }

    /// Bytes holding a Go ≥ 1.18 build info blob at an aligned offset.
    pub(crate) fn go_blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b.extend_from_slice(GO_MAGIC);
        b.extend_from_slice(&[8, 2]);
        b.extend_from_slice(&[0; 16]);
        b.extend(varstr(version.as_bytes()));
        let framed = format!("0123456789abcdef{modinfo}\n0123456789abcdef");
        b.extend(varstr(framed.as_bytes()));
        b
    }

    #[test]
    fn go_modules_with_replacements() {
        let b = go_blob(
            "go1.21.5",
            "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/sys\tv0.1.0\th1:x=\ndep\tgithub.com/a/b\tv1.0.0\th1:y=\n=>\tgithub.com/fork/b\tv1.0.1\th1:z=\nbuild\t-compiler=gc",
        );
        let p = detect(&b);
        let names: Vec<(&str, &str)> = p
            .iter()
            .map(|f| (f.name.as_str(), f.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("example.com/app", "(devel)"),
                ("golang.org/x/sys", "v0.1.0"),
                ("github.com/fork/b", "v1.0.1"),
                ("stdlib", "go1.21.5")
            ]
        );
        // A magic at an unaligned offset is not build info.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&b);
        assert!(detect(&shifted).is_empty());
    }
}

//! rpm's sqlite database (`rpmdb.sqlite`, Fedora ≥ 33, RHEL ≥ 9): each row
//! of `Packages` is an rpm header blob. SQLite is read with rusqlite's
//! bundled engine (a file format this large is not worth a second reader;
//! the database is written to a private temp file first, since SQLite
//! reads files, not buffers); the header blob is read here, as it is a
//! small fixed format: a count of index entries and of data bytes, then
//! 16-byte entries (tag, type, offset, count; big-endian) over the data.

use crate::package::{Found, PkgType};

const NAME: i32 = 1000;
const VERSION: i32 = 1001;
const RELEASE: i32 = 1002;
const EPOCH: i32 = 1003;
const LICENSE: i32 = 1014;
const ARCH: i32 = 1022;
const SOURCERPM: i32 = 1044;

const TYPE_INT32: i32 = 4;
const TYPE_STRING: i32 = 6;
const TYPE_I18NSTRING: i32 = 9;

pub fn parse(db: &[u8]) -> Result<Vec<Found>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, db).map_err(|e| e.to_string())?;
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for blob in rows {
        let blob = blob.map_err(|e| e.to_string())?;
        if let Some(f) = header(&blob) {
            out.push(f);
        }
    }
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// One package from a header blob; `None` when it is malformed or has no
/// name (a header is hostile input: every offset is checked).
pub fn header(blob: &[u8]) -> Option<Found> {
    let il = usize::try_from(be32(blob, 0)?).ok()?;
    let dl = usize::try_from(be32(blob, 4)?).ok()?;
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = blob.get(data_start..data_start.checked_add(dl)?)?;
    let mut strings: Vec<(i32, String)> = Vec::new();
    let mut epoch = None;
    for i in 0..il {
        let e = 8 + i * 16;
        let (tag, ty, off) = (be32(blob, e)?, be32(blob, e + 4)?, be32(blob, e + 8)?);
        let off = usize::try_from(off).ok()?;
        match ty {
            TYPE_STRING | TYPE_I18NSTRING => {
                let rest = data.get(off..)?;
                let end = rest.iter().position(|&b| b == 0)?;
                strings.push((tag, String::from_utf8_lossy(&rest[..end]).into_owned()));
            }
            TYPE_INT32 if tag == EPOCH => epoch = be32(data, off),
            _ => {}
        }
    }
    let get = |t: i32| {
        strings
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.clone())
    };
    let name = get(NAME)?;
    let version = get(VERSION).unwrap_or_default();
    let release = get(RELEASE).unwrap_or_default();
    let vr = if release.is_empty() {
        version
    } else {
        format!("{version}-{release}")
    };
    // syft's version: `epoch:version-release` when there is an epoch.
    let full = match epoch {
        Some(e) => format!("{e}:{vr}"),
        None => vr,
    };
    let mut f = Found::new(PkgType::Rpm, name, full);
    f.epoch = epoch.map(|e| e.to_string());
    f.arch = get(ARCH);
    f.source = get(SOURCERPM).filter(|s| !s.is_empty() && s != "(none)");
    f.licenses = get(LICENSE).into_iter().collect();
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with string entries `strs` and an optional epoch.
    pub(crate) fn blob(strs: &[(i32, &str)], epoch: Option<i32>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        let mut n: i32 = 0;
        for (tag, s) in strs {
            for v in [*tag, TYPE_STRING, data.len() as i32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(s.as_bytes());
            data.push(0);
            n += 1;
        }
        if let Some(e) = epoch {
            while data.len() % 4 != 0 {
                data.push(0);
            }
            for v in [EPOCH, TYPE_INT32, data.len() as i32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(&e.to_be_bytes());
            n += 1;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&(data.len() as i32).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn reads_a_sqlite_rpmdb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpmdb.sqlite");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
            [],
        )
        .unwrap();
        let a = blob(
            &[
                (NAME, "openssl-libs"),
                (VERSION, "3.0.7"),
                (RELEASE, "27.el9"),
                (ARCH, "x86_64"),
                (SOURCERPM, "openssl-3.0.7-27.el9.src.rpm"),
                (LICENSE, "ASL 2.0"),
            ],
            Some(1),
        );
        let b = blob(
            &[
                (NAME, "bash"),
                (VERSION, "5.1.8"),
                (RELEASE, "9.el9"),
                (ARCH, "x86_64"),
            ],
            None,
        );
        for x in [&a, &b] {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [x])
                .unwrap();
        }
        drop(conn);
        let p = parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("openssl-libs", "1:3.0.7-27.el9")
        );
        assert_eq!(p[0].epoch.as_deref(), Some("1"));
        assert_eq!(p[1].version, "5.1.8-9.el9");
        // Truncated or lying headers are refused, not trusted.
        assert!(header(&a[..20]).is_none());
        let mut bad = a.clone();
        bad[8 + 8..8 + 12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(header(&bad).is_none());
        assert!(parse(b"not sqlite").is_err());
    }
}

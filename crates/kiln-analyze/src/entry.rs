//! One tar entry of a layer as the analysis sees it, and reading a layer's
//! entries from a stream without unpacking anything.
//!
//! The facts kept are dive's `FileInfo` (path, type flag, link name, size,
//! Go `FileMode`, uid, gid, is-dir), so the dive-shaped export can print
//! them as dive does. File contents are skipped: by seeking when the layer
//! is a plain tar in a file, by reading past them otherwise.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use crate::error::{AnalyzeError, Result};

/// Whiteout prefix of the OCI layer format: `.wh.NAME` deletes `NAME`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// An opaque-directory marker: `DIR/.wh..wh..opq` hides the lower `DIR`.
pub const OPAQUE_PREFIX: &str = ".wh..wh.";

/// One entry of a layer tar (dive's `FileInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    /// The entry's name, cleaned as Go's `path.Clean` does.
    pub path: String,
    /// The tar type flag (`b'0'` file, `b'5'` directory, `b'1'` hard link...).
    pub type_flag: u8,
    pub link_name: String,
    /// The header's size (0 for links and directories in well-formed tars).
    pub size: u64,
    /// Go's `os.FileMode` of the header (permission, special and type bits).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub is_dir: bool,
}

// Go's os.FileMode bits (io/fs).
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_NAMED_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR_DEVICE: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;

/// `tar.Header.FileInfo().Mode()` of Go: permission bits, then the special
/// bits and the type from the header's mode and type flag.
fn go_file_mode(mode: u32, type_flag: u8) -> u32 {
    let mut m = mode & 0o777;
    if mode & 0o4000 != 0 {
        m |= MODE_SETUID;
    }
    if mode & 0o2000 != 0 {
        m |= MODE_SETGID;
    }
    if mode & 0o1000 != 0 {
        m |= MODE_STICKY;
    }
    // The S_IFMT bits of the header's mode first (Go's c_IS* checks).
    match mode & 0o170000 {
        0o040000 => m |= MODE_DIR,
        0o010000 => m |= MODE_NAMED_PIPE,
        0o120000 => m |= MODE_SYMLINK,
        0o060000 => m |= MODE_DEVICE,
        0o020000 => m |= MODE_DEVICE | MODE_CHAR_DEVICE,
        0o140000 => m |= MODE_SOCKET,
        _ => {}
    }
    match type_flag {
        b'2' => m |= MODE_SYMLINK,
        b'3' => m |= MODE_DEVICE | MODE_CHAR_DEVICE,
        b'4' => m |= MODE_DEVICE,
        b'5' => m |= MODE_DIR,
        b'6' => m |= MODE_NAMED_PIPE,
        _ => {}
    }
    m
}

/// Go's `path.Clean` for tar names: no `.`/empty components, `..` folded.
pub fn clean(name: &str) -> String {
    let rooted = name.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn info_of<R: Read>(entry: &tar::Entry<'_, R>) -> Result<Option<FileInfo>> {
    let header = entry.header();
    let type_flag = header.entry_type().as_byte();
    // PAX global headers carry no file (dive refuses them; skipping them is
    // the lenient reading of the same archive).
    if type_flag == b'g' || type_flag == b'x' {
        return Ok(None);
    }
    let raw = entry.path_bytes();
    let name = String::from_utf8_lossy(&raw);
    let path = clean(&name);
    if path == "." || path == "/" {
        return Ok(None);
    }
    let mode = header.mode().unwrap_or(0);
    let link_name = entry
        .link_name_bytes()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    let file_mode = go_file_mode(mode, type_flag);
    Ok(Some(FileInfo {
        path,
        type_flag,
        link_name,
        size: header.size().map_err(AnalyzeError::layer)?,
        mode: file_mode,
        uid: header.uid().unwrap_or(0),
        gid: header.gid().unwrap_or(0),
        is_dir: file_mode & MODE_DIR != 0,
    }))
}

/// A byte range of a file, readable and seekable on its own: a layer
/// stored inside an archive, or a whole blob file.
pub struct Window {
    file: std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    pub fn new(file: std::fs::File, start: u64, len: u64) -> Window {
        Window {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// A whole file.
    pub fn whole(file: std::fs::File) -> std::io::Result<Window> {
        let len = file.metadata()?.len();
        Ok(Window::new(file, 0, len))
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let next = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start")
        })?;
        Ok(self.pos)
    }
}

/// A layer's bytes as a source gives them.
pub enum LayerStream {
    /// A byte range of a local file: a plain tar is walked by seeking.
    File(Window),
    /// Bytes arriving in order (a registry download).
    Stream(Box<dyn Read + Send>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Every entry of a layer (plain, gzip or zstd tar), in archive order.
pub fn read_entries(stream: LayerStream) -> Result<Vec<FileInfo>> {
    match stream {
        LayerStream::File(mut w) => {
            let mut head = [0u8; 4];
            let n = read_head(&mut w, &mut head)?;
            w.seek(SeekFrom::Start(0)).map_err(AnalyzeError::layer)?;
            match sniff(&head[..n]) {
                Compression::None => {
                    let mut archive = tar::Archive::new(w);
                    let entries = archive.entries_with_seek().map_err(AnalyzeError::layer)?;
                    collect(entries)
                }
                c => decompressed(c, Box::new(BufReader::with_capacity(1 << 20, w))),
            }
        }
        LayerStream::Stream(r) => {
            let mut r = BufReader::with_capacity(1 << 20, r);
            let head = r.fill_buf().map_err(AnalyzeError::layer)?;
            let c = sniff(head);
            decompressed(c, Box::new(r))
        }
    }
}

/// A layer's tar bytes, decompressed (plain, gzip or zstd), as one stream:
/// for readers that need file contents, not only headers (`kiln sbom`).
pub fn tar_stream(stream: LayerStream) -> Result<Box<dyn Read + Send>> {
    let (c, r): (Compression, Box<dyn BufRead + Send>) = match stream {
        LayerStream::File(w) => {
            let mut r = BufReader::with_capacity(1 << 20, w);
            let c = sniff(r.fill_buf().map_err(AnalyzeError::layer)?);
            (c, Box::new(r))
        }
        LayerStream::Stream(s) => {
            let mut r = BufReader::with_capacity(1 << 20, s);
            let c = sniff(r.fill_buf().map_err(AnalyzeError::layer)?);
            (c, Box::new(r))
        }
    };
    Ok(match c {
        Compression::None => r,
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(r).map_err(AnalyzeError::layer)?),
    })
}

fn read_head(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).map_err(AnalyzeError::layer)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn decompressed(c: Compression, r: Box<dyn BufRead + Send>) -> Result<Vec<FileInfo>> {
    let inner: Box<dyn Read + Send> = match c {
        Compression::None => r,
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(r).map_err(AnalyzeError::layer)?),
    };
    let mut archive = tar::Archive::new(inner);
    let entries = archive.entries().map_err(AnalyzeError::layer)?;
    collect(entries)
}

fn collect<R: Read>(entries: tar::Entries<'_, R>) -> Result<Vec<FileInfo>> {
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(AnalyzeError::layer)?;
        if let Some(info) = info_of(&entry)? {
            out.push(info);
        }
    }
    Ok(out)
}

/// Entries for unit tests: a regular file and a directory, every other
/// fact left at its default.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::FileInfo;

    pub(crate) fn file(path: &str, size: u64) -> FileInfo {
        FileInfo {
            path: path.into(),
            type_flag: b'0',
            size,
            ..FileInfo::default()
        }
    }

    pub(crate) fn dir(path: &str) -> FileInfo {
        FileInfo {
            path: path.into(),
            type_flag: b'5',
            is_dir: true,
            ..FileInfo::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_follows_go_path_clean() {
        assert_eq!(clean("./a/b/"), "a/b");
        assert_eq!(clean("a//b/../c"), "a/c");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean("/x/./y"), "/x/y");
        assert_eq!(clean("../a"), "../a");
    }

    #[test]
    fn file_modes_carry_go_type_bits() {
        assert_eq!(go_file_mode(0o755, b'5'), MODE_DIR | 0o755);
        assert_eq!(go_file_mode(0o777, b'2'), MODE_SYMLINK | 0o777);
        assert_eq!(go_file_mode(0o4755, b'0'), MODE_SETUID | 0o755);
        assert_eq!(go_file_mode(0o644, b'1'), 0o644);
    }
}

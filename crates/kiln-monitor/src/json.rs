//! The few JSON texts the monitor writes, by hand: docker's json-file log
//! lines and an update of a few top-level fields of `state.json`. serde
//! and serde_json would cost this resident process more code and memory
//! than these hundred lines; the tests check that the bytes are those
//! serde_json writes and that kiln-container reads them back.

use crate::time::fixed_nanos;
use std::time::SystemTime;

/// Which stream a log record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it: `"`,
/// `\` and control characters only (the short forms where JSON has them,
/// `\u00xx` in lower-case hex for the rest).
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// One json-file record, `{"log":…,"stream":…,"time":…}` and a newline,
/// the fields in the order kiln-container's `logs::Entry` serializes them.
/// Bytes that are not UTF-8 become U+FFFD, as `String::from_utf8_lossy`
/// makes them.
pub fn log_line(out: &mut Vec<u8>, bytes: &[u8], stream: Stream, time: &str) {
    out.extend_from_slice(b"{\"log\":");
    push_string(out, &String::from_utf8_lossy(bytes));
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":");
    push_string(out, time);
    out.extend_from_slice(b"}\n");
}

/// docker's limit on one record: a longer line is cut into parts.
const MAX_LINE: usize = 16 * 1024;

/// Splits a stream into records as `kiln_container::logs::LineSplitter`
/// does: complete lines as they come, a part when 16 KiB pass without a
/// newline, the rest at the end.
#[derive(Debug)]
pub struct LineSplitter {
    pub stream: Stream,
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new(stream: Stream) -> LineSplitter {
        LineSplitter {
            stream,
            pending: Vec::new(),
        }
    }

    /// Feeds bytes; appends each finished record's line to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        let now = fixed_nanos(SystemTime::now());
        while let Some(i) = self.pending[start..].iter().position(|b| *b == b'\n') {
            log_line(out, &self.pending[start..=start + i], self.stream, &now);
            start += i + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            log_line(
                out,
                &self.pending[start..start + MAX_LINE],
                self.stream,
                &now,
            );
            start += MAX_LINE;
        }
        self.pending.drain(..start);
        if self.pending.capacity() > 2 * MAX_LINE && self.pending.len() < MAX_LINE {
            // A long line once must not keep its buffer for the process's life.
            self.pending.shrink_to(MAX_LINE);
        }
    }

    /// The last, unterminated line, if any.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            let now = fixed_nanos(SystemTime::now());
            log_line(out, &self.pending, self.stream, &now);
            self.pending = Vec::new();
        }
    }
}

/// `text` (a JSON object) with top-level `fields` set to the given raw
/// JSON values (added at the end when missing), everything else kept as
/// it was; `None` when `text` is not an object.
pub fn set_fields(text: &str, fields: &[(&str, &str)]) -> Option<String> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut out = String::with_capacity(text.len() + 64);
    out.push('{');
    let mut seen = vec![false; fields.len()];
    let mut first = true;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => break,
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(b, i)?;
        let key = &text[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let v_start = skip_ws(b, i + 1);
        let v_end = skip_value(b, v_start)?;
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        match fields.iter().position(|(k, _)| *k == key) {
            Some(n) => {
                seen[n] = true;
                out.push_str(fields[n].1);
            }
            None => out.push_str(&text[v_start..v_end]),
        }
        i = skip_ws(b, v_end);
        match b.get(i)? {
            b',' => i += 1,
            b'}' => break,
            _ => return None,
        }
    }
    for (n, (k, v)) in fields.iter().enumerate() {
        if !seen[n] {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
            out.push_str(v);
        }
    }
    out.push('}');
    Some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index after the string starting at `b[i]` (a `"`).
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The index after the value starting at `b[i]`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

//! docker's `json-file` log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"…"}`, times in RFC 3339 with
//! nine fraction digits. The monitor writes it; `logs` reads it back.

use std::io::{BufRead, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// RFC 3339 UTC with exactly nine fraction digits (docker's
/// `RFC3339NanoFixed`), so log times sort as text.
pub fn fixed_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let base = kiln_core::rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()));
    format!("{}.{:09}Z", base.trim_end_matches('Z'), d.subsec_nanos())
}

/// Splits a stream into log records: complete lines as they come, a
/// partial line when the buffer passes 16 KiB (docker's limit) or at the
/// end.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    pending: Vec<u8>,
}

const MAX_LINE: usize = 16 * 1024;

impl LineSplitter {
    pub fn new(stream: Stream) -> LineSplitter {
        LineSplitter {
            stream,
            pending: Vec::new(),
        }
    }

    /// Feeds bytes; calls `emit` with each finished record.
    pub fn feed(&mut self, bytes: &[u8], emit: &mut dyn FnMut(Entry)) {
        self.pending.extend_from_slice(bytes);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            emit(self.entry(&line));
        }
        while self.pending.len() >= MAX_LINE {
            let part: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            emit(self.entry(&part));
        }
    }

    /// The last, unterminated line, if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Entry)) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            emit(self.entry(&rest));
        }
    }

    fn entry(&self, bytes: &[u8]) -> Entry {
        Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: self.stream,
            time: fixed_nanos(SystemTime::now()),
        }
    }
}

/// Appends `entry` as one line.
pub fn write_entry(out: &mut impl Write, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
    /// Only records before this time.
    pub until: Option<SystemTime>,
    /// Only the last N records.
    pub tail: Option<usize>,
}

impl Filter {
    pub fn keeps(&self, e: &Entry) -> bool {
        let Some(t) = kiln_core::parse_rfc3339(&e.time) else {
            return true;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Every record of a log that `filter` keeps (unreadable lines, such as
/// one cut by a crash, are skipped).
pub fn read(reader: impl BufRead, filter: &Filter) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            if filter.keeps(&e) {
                out.push(e);
            }
        }
    }
    if let Some(n) = filter.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// docker's `--since`/`--until` values: RFC 3339 times, Unix timestamps
/// (`1700000000[.5]`), or durations before now (`10m`, `1h30m`, `5s`).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Some(t) = kiln_core::parse_rfc3339(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 {
            return Ok(UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
        }
    }
    kiln_core::parse_go_duration(s)
        .and_then(|d| now.checked_sub(d))
        .ok_or_else(|| format!("invalid time {s:?}: use an RFC 3339 time, a Unix timestamp or a duration such as 10m"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_become_docker_records() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut got = Vec::new();
        s.feed(b"hello\nwor", &mut |e| got.push(e));
        s.feed(b"ld\n", &mut |e| got.push(e));
        s.feed(b"tail", &mut |e| got.push(e));
        s.finish(&mut |e| got.push(e));
        let logs: Vec<&str> = got.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, ["hello\n", "world\n", "tail"]);
        let mut buf = Vec::new();
        write_entry(&mut buf, &got[0]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(r#"{"log":"hello\n","stream":"stdout","time":""#),
            "{text}"
        );
        assert_eq!(got[0].time.len(), "2026-12-06T14:00:00.123456789Z".len());
    }

    /// The lean monitor writes the log by hand: the same bytes as
    /// `write_entry`, split the same way, read back by `read`.
    #[test]
    fn the_lean_monitors_log_lines_are_the_same_bytes() {
        let mut weird = String::from("tab\tquote\"back\\slash/ é 😀 \u{7f}");
        weird.extend((0u8..0x20).map(char::from));
        for text in ["hello\n", "", weird.as_str()] {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let e = Entry {
                    log: text.into(),
                    stream,
                    time: "2026-12-06T14:00:00.123456789Z".into(),
                };
                let mut ours = Vec::new();
                write_entry(&mut ours, &e).unwrap();
                let lean_stream = match stream {
                    Stream::Stdout => kiln_monitor::Stream::Stdout,
                    Stream::Stderr => kiln_monitor::Stream::Stderr,
                };
                let mut lean = Vec::new();
                kiln_monitor::json::log_line(&mut lean, text.as_bytes(), lean_stream, &e.time);
                assert_eq!(text_of(&lean), text_of(&ours));
            }
        }
        // Split alike, invalid UTF-8 and 16 KiB parts included.
        let input: Vec<&[u8]> = vec![b"one\ntw", b"o\xff\n", &[b'y'; 40_000], b"\nend"];
        let mut ours = LineSplitter::new(Stream::Stderr);
        let mut lean = kiln_monitor::LineSplitter::new(kiln_monitor::Stream::Stderr);
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for chunk in input {
            ours.feed(chunk, &mut |e| want.push(e));
            lean.feed(chunk, &mut got);
        }
        ours.finish(&mut |e| want.push(e));
        lean.finish(&mut got);
        let read_back = read(&got[..], &Filter::default()).unwrap();
        let logs = |v: &[Entry]| {
            v.iter()
                .map(|e| (e.log.clone(), e.stream))
                .collect::<Vec<_>>()
        };
        assert_eq!(logs(&read_back), logs(&want));
        assert!(read_back.iter().all(|e| e.time.len() == 30));
    }

    fn text_of(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn tail_since_and_until() {
        let at = |s: u64| fixed_nanos(UNIX_EPOCH + Duration::from_secs(s));
        let text: String = (1..=5)
            .map(|i| {
                format!(
                    "{{\"log\":\"{i}\\n\",\"stream\":\"stdout\",\"time\":\"{}\"}}\n",
                    at(i * 10)
                )
            })
            .collect::<String>()
            + "{broken\n";
        let all = read(text.as_bytes(), &Filter::default()).unwrap();
        assert_eq!(all.len(), 5);
        let f = Filter {
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(read(text.as_bytes(), &f).unwrap()[0].log, "4\n");
        let f = Filter {
            since: Some(UNIX_EPOCH + Duration::from_secs(20)),
            until: Some(UNIX_EPOCH + Duration::from_secs(40)),
            tail: None,
        };
        let got: Vec<String> = read(text.as_bytes(), &f)
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(got, ["2\n", "3\n"]);
    }

    #[test]
    fn docker_time_arguments() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            parse_time("10m", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(9_400)
        );
        assert_eq!(
            parse_time("1h1m1s", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(10_000 - 3661)
        );
        assert_eq!(
            parse_time("100", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(100)
        );
        assert_eq!(
            parse_time("1970-01-01T00:01:40Z", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(100)
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(
            parse_time("300ms", now).unwrap(),
            now - Duration::from_millis(300)
        );
    }
}

#![allow(clippy::unwrap_used)]
use super::json::*;
use super::*;
use std::time::UNIX_EPOCH;

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    let mut all = String::new();
    for c in (0u32..0x80).chain([0x7f, 0xe9, 0x2028, 0x1f600]) {
        all.push(char::from_u32(c).unwrap());
    }
    for s in ["", "plain", "a \"quoted\" \\ path/\n", &all] {
        let mut out = Vec::new();
        push_string(&mut out, s);
        assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
    }
}

#[test]
fn log_lines_are_docker_json_file_records() {
    let mut out = Vec::new();
    log_line(
        &mut out,
        b"hi \xff\n",
        Stream::Stderr,
        "2026-12-06T14:00:00.000000001Z",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"log\":\"hi \u{fffd}\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-06T14:00:00.000000001Z\"}\n"
    );
}

#[test]
fn lines_are_split_as_docker_splits_them() {
    let mut s = LineSplitter::new(Stream::Stdout);
    let mut out = Vec::new();
    s.feed(b"hello\nwor", &mut out);
    s.feed(b"ld\n", &mut out);
    s.feed(&vec![b'x'; 16 * 1024 + 3], &mut out);
    s.finish(&mut out);
    let logs: Vec<String> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            v["log"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[0], "hello\n");
    assert_eq!(logs[1], "world\n");
    assert_eq!(logs[2].len(), 16 * 1024);
    assert_eq!(logs[3], "xxx");
}

#[test]
fn times_have_nine_fraction_digits() {
    let t = UNIX_EPOCH + Duration::new(1_796_565_600, 1_234);
    assert_eq!(fixed_nanos(t), "2026-12-06T14:00:00.000001234Z");
    assert_eq!(fixed_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        fixed_nanos(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00.000000000Z"
    );
}

#[test]
fn fields_are_set_and_the_rest_kept() {
    let text = r#"{"status":"running","pid":42,"error":"a \"}\" b","started_at":"x","health":{"log":[{"output":"]}"}],"s":1},"monitor":[7,8]}"#;
    let new = set_fields(
        text,
        &[
            ("status", "\"exited\""),
            ("pid", "null"),
            ("monitor", "null"),
            ("exit_code", "3"),
        ],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&new).unwrap();
    let old: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(v["status"], "exited");
    assert_eq!(v["pid"], serde_json::Value::Null);
    assert_eq!(v["monitor"], serde_json::Value::Null);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["error"], old["error"]);
    assert_eq!(v["health"], old["health"]);
    assert_eq!(v["started_at"], "x");
    // Pretty-printed input works too; garbage is refused.
    let pretty = serde_json::to_string_pretty(&old).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&set_fields(&pretty, &[("pid", "1")]).unwrap()).unwrap();
    assert_eq!(v["pid"], 1);
    assert!(set_fields("[1]", &[]).is_none());
    assert!(set_fields("{\"a\":", &[]).is_none());
}

#[test]
fn state_updates_are_atomic_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(STATE_FILE),
        r#"{"status":"running","pid":9}"#,
    )
    .unwrap();
    update_state(dir.path(), &[("status", "\"exited\""), ("pid", "null")]).unwrap();
    let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(text, r#"{"status":"exited","pid":null}"#);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}"); // state.json and .lock
}

#[test]
fn handover_and_back_round_trip() {
    let h = Handover {
        root: "/var/lib/kiln".into(),
        id: "abc".into(),
        kiln: "/usr/bin/kiln".into(),
        dir: "/var/lib/kiln/containers/abc".into(),
        rootfs: "/var/lib/kiln/containers/abc/rootfs".into(),
        pid: 12,
        attached: true,
        out: None,
        err: None,
        pty: Some(5),
        copy_stdin: true,
        winch: true,
        keep: vec![7],
        relays: vec![
            Relay {
                udp: false,
                fd: 8,
                to: "10.88.0.2:80".parse().unwrap(),
            },
            Relay {
                udp: true,
                fd: 9,
                to: "[fd00::2]:53".parse().unwrap(),
            },
        ],
        delay_ms: 400,
        probe_ms: 30_000,
    };
    assert_eq!(Handover::parse(h.to_args()).unwrap(), h);
    assert!(Handover::parse(vec![OsString::from("r"), OsString::from("i")]).is_err());
    let b = Back {
        code: 137,
        rootfs: "/r".into(),
        delay_ms: 100,
        relays: vec![Relay {
            udp: false,
            fd: 8,
            to: "10.88.0.2:8080".parse().unwrap(),
        }],
        attached: true,
    };
    let flags: Vec<String> = b
        .to_args()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect();
    assert_eq!(Back::parse(&flags).unwrap(), Some(b));
    assert_eq!(Back::parse(&["--attach".to_string()]).unwrap(), None);
    for bad in ["sctp:8:10.0.0.1:80", "tcp:x:10.0.0.1:80", "tcp:8:10.0.0.1"] {
        let flags = ["--exited", "0", "--relay", bad].map(String::from);
        assert!(Back::parse(&flags).is_err(), "{bad} was read");
    }
}

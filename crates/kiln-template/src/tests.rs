#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use super::*;
use serde_json::json;

fn render(t: &str, data: serde_json::Value) -> Result<String, Error> {
    Template::parse(t)?.execute(&Value::from_json(&data))
}

#[test]
fn prints_like_go() {
    let doc = json!({"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "N": null, "Size": 42, "T": true});
    assert_eq!(
        render("{{.Env}} {{.Labels}} {{.N}} {{.Size}} {{.T}}", doc).unwrap(),
        "[A=1 B=2] map[a:1 b:2] <no value> 42 true"
    );
    assert_eq!(render("{{.}}", json!([1, null])).unwrap(), "[1 <nil>]");
    let s = Value::strings("*formatter.x", &[("A", "a".into()), ("B", "b".into())]);
    assert_eq!(
        Template::parse("{{.}}").unwrap().execute(&s).unwrap(),
        "{a b}"
    );
}

#[test]
fn durations_like_go() {
    for (n, want) in [
        (0, "0s"),
        (30_000_000_000, "30s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (1_500_000_000, "1.5s"),
        (1_500_000, "1.5ms"),
        (2_000, "2µs"),
        (7, "7ns"),
        (-30_000_000_000, "-30s"),
    ] {
        assert_eq!(Value::Duration(n).to_string(), want);
    }
    assert_eq!(Value::Duration(30_000_000_000).to_json(), "30000000000");
}

#[test]
fn functions_builtin_and_docker() {
    let doc =
        json!({"L": ["x", "y"], "M": {"k": "v"}, "S": "a b-c", "Cmd": ["sh", "-c", "a && b"]});
    for (t, want) in [
        ("{{index .L 1}}", "y"),
        ("{{index .M \"k\"}}", "v"),
        // A missing key of a string map: Go's zero value, ""
        // (docker's `{{index .Config.Labels "nokey"}}`).
        ("[{{index .M \"nokey\"}}]", "[]"),
        ("{{len .L}}", "2"),
        ("{{json .Cmd}}", r#"["sh","-c","a && b"]"#),
        ("{{json .M}}", r#"{"k":"v"}"#),
        ("{{join .L \",\"}}", "x,y"),
        (
            "{{upper .S}}|{{lower \"AB\"}}|{{title .S}}",
            "A B-C|ab|A B-C",
        ),
        ("{{split .S \" \"}}", "[a b-c]"),
        ("{{pad .S 1 2}}|", " a b-c  |"),
        ("{{truncate .S 3}}", "a b"),
        ("{{println .S 1}}", "a b-c 1\n"),
        ("{{printf \"%s=%d\" .S 3}}", "a b-c=3"),
        (
            "{{printf \"%-7s|%5s|%.1s|%03d|%q\" .S \"x\" .S 7 .S}}",
            "a b-c  |    x|a|007|\"a b-c\"",
        ),
        ("{{printf \"%d %s\" .S}}", "%!d(string=a b-c) %!s(MISSING)"),
        ("{{.S | upper}}", "A B-C"),
        ("{{if eq .S \"x\"}}1{{else if .L}}2{{else}}3{{end}}", "2"),
        ("{{range $i, $e := .L}}{{$i}}={{$e}};{{end}}", "0=x;1=y;"),
        ("{{range $k, $v := .M}}{{$k}}:{{$v}}{{end}}", "k:v"),
        ("{{range .Nil}}x{{else}}empty{{end}}", "empty"),
        ("{{with .M}}{{.k}}{{end}}", "v"),
        ("{{$x := .S}}{{$x}}", "a b-c"),
        ("{{(index .L 0) | len}}", "1"),
        ("a {{- \" b \" -}} c", "a b c"),
        ("{{/* comment */}}x", "x"),
        ("{{and .S .L | not}} {{or \"\" .S}}", "false a b-c"),
    ] {
        let mut doc = doc.clone();
        doc["Nil"] = json!(null);
        assert_eq!(render(t, doc).unwrap(), want, "{t}");
    }
}

#[test]
fn errors_are_dockers() {
    let e = render("{{.Nope}}", json!({"A": 1}))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope""#
    );
    let e = render("{{.Config.Nope}}", json!({"Config": {}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains(":1:9: executing \"\" at <.Config.Nope>"), "{e}");
    // A listing row marshals itself as Go's json.Marshal does (HTML
    // escaped); its fields, through docker's encoder, are not.
    let row = Value::strings("*formatter.imageContext", &[("Tag", "<none>".into())]);
    let out = Template::parse("{{json .}} {{json .Tag}}")
        .unwrap()
        .execute(&row)
        .unwrap();
    assert_eq!(out, r#"{"Tag":"\u003cnone\u003e"} "<none>""#);
    let s = Value::strings("*formatter.imageContext", &[("ID", "x".into())]);
    let e = Template::parse("{{.Nope}}")
        .unwrap()
        .execute(&s)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *formatter.imageContext"#
    );
    assert_eq!(
        Template::parse("{{.ID").unwrap_err().to_string(),
        "template parsing error: template: :1: unclosed action"
    );
    assert!(Template::parse("{{if .A}}x").is_err());
    assert!(Template::parse("{{end}}").is_err());
    assert!(render("{{nofunc .A}}", json!({"A": 1})).is_err());
    assert!(render("{{index .L 5}}", json!({"L": []})).is_err());
}

#[test]
fn go_maps_give_no_value_for_missing_keys() {
    let mut labels = Value::from_json(&json!({"a": "1"})).into_go_map();
    assert_eq!(
        Template::parse("{{.b}}|{{.a}}")
            .unwrap()
            .execute(&labels)
            .unwrap(),
        "<no value>|1"
    );
    labels = Value::from_json(&json!({"a": "1"}));
    assert!(Template::parse("{{.b}}").unwrap().execute(&labels).is_err());
}

#[test]
fn aliases_and_headers() {
    let t = Template::parse("{{.ID}} {{.Id}}")
        .unwrap()
        .alias("ID", "Id");
    assert_eq!(
        t.execute(&Value::from_json(&json!({"Id": "x"}))).unwrap(),
        "x x"
    );
    let t = Template::parse("{{.ID}}\t{{json .Size}}").unwrap();
    let h = Value::from_json(&json!({"ID": "IMAGE ID", "Size": "SIZE"}));
    assert_eq!(t.execute_header(&h).unwrap(), "IMAGE ID\tSIZE");
}

/// buildx's imagetools templates: Go field names find JSON tags, and
/// `json` indents as `json.MarshalIndent(v, "", "  ")`, HTML escaped.
#[test]
fn go_struct_fields_by_json_tag_and_indented_json() {
    let data = Value::from_json(&json!({
        "manifest": {"digest": "sha256:ab", "mediaType": "m"},
        "image": {"rootfs": {"diff_ids": ["d1"]}, "os.version": "10", "author": "<a&b>"}
    }));
    let t = Template::parse(
        "{{.Manifest.Digest}} {{index .Image.RootFS.DiffIDs 0}} {{.Image.OSVersion}}",
    )
    .unwrap()
    .json_tag_fields();
    assert_eq!(t.execute(&data).unwrap(), "sha256:ab d1 10");
    let plain = Template::parse("{{.Manifest.Digest}}").unwrap();
    assert!(
        plain.execute(&data).is_err(),
        "only asked-for templates map Go names"
    );
    let t = Template::parse("{{json .Manifest}}|{{json .Image.Author}}")
        .unwrap()
        .json_tag_fields()
        .json_indent("  ");
    assert_eq!(
        t.execute(&data).unwrap(),
        "{\n  \"digest\": \"sha256:ab\",\n  \"mediaType\": \"m\"\n}|\"\\u003ca\\u0026b\\u003e\""
    );
}

#[test]
fn tabwriter_like_go() {
    assert_eq!(
        tabwrite("REPOSITORY\tTAG\tIMAGE ID\nbbtest\t1\t64635fb8ca71\n"),
        "REPOSITORY   TAG       IMAGE ID\nbbtest       1         64635fb8ca71\n"
    );
}

/// Templates come from the command line: whatever is typed, the engine
/// answers with text or an error, never a panic.
#[test]
fn arbitrary_templates_never_panic() {
    const PIECES: [&str; 28] = [
        "{{", "}}", "{{-", "-}}", " ", ".", ".A", ".L", "$", "$x", ":=", "=", "|", "(", ")", "\"s",
        "\"", "`", "if", "else", "end", "range", "with", "index", "len", "json", "1", "/*",
    ];
    let data = Value::from_json(&json!({"A": "a", "L": [1, 2], "M": {"k": null}}));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut t = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 12) as usize;
        let mut r = seed;
        for _ in 0..n {
            t.push_str(PIECES[(r % PIECES.len() as u64) as usize]);
            r /= PIECES.len() as u64;
            if r == 0 {
                r = seed.rotate_left(17);
            }
        }
        if let Ok(tmpl) = Template::parse(&t) {
            let _ = tmpl.execute(&data);
        }
    }
}

//! `kiln dockerfile parse`: the frontend from the command line.
#![allow(clippy::unwrap_used)]

mod common;

use common::Kiln;

#[test]
fn parse_prints_the_model_as_json_and_text() {
    let k = Kiln::new();
    let file = k.path("Dockerfile");
    std::fs::write(
        &file,
        "ARG BASE=busybox\nFROM $BASE AS build\nARG WHO=world\nENV GREETING=\"hello $WHO\"\nRUN echo $GREETING\nCOPY --from=build --chown=1:1 a b /dst/\n",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&k.ok(&[
        "dockerfile",
        "parse",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["global_args"][0]["name"], "BASE");
    let stage = &json["stages"][0];
    assert_eq!(
        (stage["name"].as_str(), stage["base"].as_str()),
        (Some("build"), Some("$BASE"))
    );
    let copy = &stage["instructions"][3];
    assert_eq!(copy["span"]["line"], 6);
    assert_eq!(copy["command"]["kind"], "COPY");
    assert_eq!(
        copy["command"]["args"]["sources"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(copy["command"]["args"]["from"], "build");

    let text = k.ok(&[
        "dockerfile",
        "parse",
        file.to_str().unwrap(),
        "--expand",
        "--build-arg",
        "WHO=kiln",
        "--build-arg",
        "BASE=alpine",
    ]);
    assert!(text.contains("base=\"alpine\""), "{text}");
    assert!(text.contains(r#""value":"hello kiln""#), "{text}");
    // RUN is left to the shell.
    assert!(text.contains(r#"{"shell":"echo $GREETING"}"#), "{text}");
}

#[test]
fn parse_errors_point_at_line_and_column_with_a_hint() {
    let k = Kiln::new();
    let file = k.path("Dockerfile");
    std::fs::write(&file, "FROM busybox\n  COPPY a /b\n").unwrap();
    let err = k.fails(&["dockerfile", "parse", file.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:2:3: unknown instruction: COPPY"),
        "{err}"
    );
    assert!(err.contains("did you mean COPY?"), "{err}");
    let err = k.fails(&["dockerfile", "parse", "/nonexistent/Dockerfile"]);
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}

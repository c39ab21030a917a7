//! The Dockerfile frontend on arbitrary text: parsing, expansion of every
//! stage, the word expanders and the .dockerignore matcher must never
//! panic, and an error must point inside the text.
#![no_main]

use std::collections::BTreeMap;

use kiln_dockerfile::expand::{expand_heredoc, expand_word, expand_words};
use kiln_dockerfile::ignore::Matcher;
use kiln_dockerfile::{parse, BuildOptions, Platform};
use libfuzzer_sys::fuzz_target;

fn amd64() -> Platform {
    "linux/amd64".parse().expect("a valid platform")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count().max(1);
    let opts = BuildOptions {
        build_args: BTreeMap::from([("A".to_string(), "x y".to_string())]),
        build_platform: amd64(),
        target_platform: amd64(),
    };
    match parse(&text) {
        Ok(df) => {
            if let Err(e) = df.expand_all(&opts) {
                assert!(e.span.line >= 1 && e.span.line <= lines + 1, "{e}");
            }
            let _ = df.outline();
            let _ = df.unused_build_args(&opts);
        }
        Err(e) => {
            assert!(e.span.line >= 1 && e.span.line <= lines + 1, "{e}");
            let _ = e.to_string();
        }
    }
    let env: &[(&str, &str)] = &[("A", "x y"), ("EMPTY", "")];
    for escape in ['\\', '`'] {
        let _ = expand_word(&text, env, escape);
        let _ = expand_words(&text, env, escape);
        let _ = expand_heredoc(&text, env, escape);
    }
    if let Ok(m) = Matcher::parse(&text) {
        for path in ["a", "a/b/c", ".git/config", "node_modules/x/y.js", ""] {
            let _ = m.excludes(path);
        }
    }
});

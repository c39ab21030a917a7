//! `kiln build` against BuildKit (docker 20.10's) on the same Dockerfiles:
//! the repros of the parity issue, each built by both and compared by file
//! tree (owners and modes included), config, history and exit code.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::process::Command;

use common::buildkit::{assert_same_tree, config, history, tree, Peers};

#[test]
fn copy_into_an_existing_directory_without_a_trailing_slash() {
    let p = Peers::new();
    let ctx = p.context(
        "copy-into-dir",
        &[
            ("a", "hello\n"),
            (
                "Dockerfile",
                "FROM {BASE}\nCOPY a /tmp\nCOPY a /etc\nRUN true\nWORKDIR /w\nCOPY a /w\nRUN ls -ld /tmp /etc /tmp/a /etc/a /w/a\n",
            ),
        ],
    );
    let (_, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    let t = tree(&kiln.image);
    assert_eq!(t["tmp"].kind, 'd', "/tmp stays a directory");
    assert_eq!(t["tmp/a"].kind, 'f');
    assert_eq!(t["w/a"].kind, 'f');
}

#[test]
fn workdir_after_user_belongs_to_that_user() {
    let p = Peers::new();
    let ctx = p.context(
        "workdir-user",
        &[(
            "Dockerfile",
            "FROM {BASE}\nUSER 1000\nWORKDIR /home/u/work\nRUN touch x\nUSER app\nWORKDIR /srv/app/data\nRUN touch y\nUSER root\nWORKDIR /etc\n",
        )],
    );
    let (_, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    let t = tree(&kiln.image);
    for dir in ["home/u", "home/u/work", "srv", "srv/app/data"] {
        assert_eq!((t[dir].uid, t[dir].gid), (1000, 1000), "{dir}");
    }
    assert_eq!(t["etc"].uid, 0, "an existing directory keeps its owner");
}

#[test]
fn chown_owns_the_directories_a_copy_creates() {
    let p = Peers::new();
    let ctx = p.context(
        "chown-dirs",
        &[
            ("a", "a\n"),
            ("dir/sub/f", "f\n"),
            (
                "Dockerfile",
                "FROM {BASE}\nCOPY --chown=1000:1000 dir /new/dir\nCOPY --chown=app:app a /new2/deep/\nADD --chown=1000 a /x/y/z\nCOPY --chown=app dir /tmp/existing-parent\nCOPY a /plain/new/\n",
            ),
        ],
    );
    let (_, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    let t = tree(&kiln.image);
    for dir in [
        "new",
        "new/dir",
        "new/dir/sub",
        "new2",
        "new2/deep",
        "x",
        "x/y",
    ] {
        assert_eq!((t[dir].uid, t[dir].gid), (1000, 1000), "{dir}");
    }
    assert_eq!(t["tmp"].uid, 0);
    assert_eq!(t["plain/new"].uid, 0);
}

/// A tar of `dir`'s content (the context as docker sends it).
fn context_tar(dir: &std::path::Path, out: &std::path::Path, compress: Option<&str>) {
    let plain = out.with_extension("plain.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["-cf"])
        .arg(&plain)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    match compress {
        None => fs::rename(&plain, out).unwrap(),
        Some(tool) => {
            let data = Command::new(tool)
                .args(["-c"])
                .arg(&plain)
                .output()
                .unwrap();
            assert!(
                data.status.success(),
                "{tool} is required (setup.sh installs it)"
            );
            fs::write(out, data.stdout).unwrap();
        }
    }
}

#[test]
fn contexts_and_dockerfiles_from_standard_input() {
    let p = Peers::new();
    // A lone Dockerfile: no context at all.
    let df = p.kiln.path("stdin.Dockerfile");
    fs::write(&df, format!("FROM {}\nRUN echo from-stdin > /s\n", p.base)).unwrap();
    let (bk, kiln) = p.both_with_stdin(&["-"], Some(&df));
    assert_same_tree(&tree(&bk.image), &tree(&kiln.image));
    // A context archive, in each compression docker reads; -f names a
    // file inside it.
    let ctx = p.context(
        "stdin-ctx",
        &[
            ("a", "from the archive\n"),
            ("Dockerfile", "FROM {BASE}\nCOPY a /a\n"),
            ("sub/other.Dockerfile", "FROM {BASE}\nCOPY a /b\n"),
        ],
    );
    let gz = p.kiln.path("ctx.tar.gz");
    context_tar(&ctx, &gz, Some("gzip"));
    let (bk, kiln) = p.both_with_stdin(&["-"], Some(&gz));
    assert_same_tree(&tree(&bk.image), &tree(&kiln.image));
    let (bk, kiln) = p.both_with_stdin(&["-f", "sub/other.Dockerfile", "-"], Some(&gz));
    let t = tree(&kiln.image);
    assert_same_tree(&tree(&bk.image), &t);
    assert!(t.contains_key("b") && !t.contains_key("a"));
    for (name, compress) in [
        ("ctx.tar", None),
        ("ctx.tar.bz2", Some("bzip2")),
        ("ctx.tar.xz", Some("xz")),
        ("ctx.tar.zst", Some("zstd")),
    ] {
        let archive = p.kiln.path(name);
        context_tar(&ctx, &archive, compress);
        let built = p.kiln(&["-"], Some(&archive));
        assert_eq!(built.code, 0, "{name}: {}", built.output);
        assert_eq!(tree(&built.image)["a"], t["b"], "{name}");
    }
    // A -f that is not in the archive says so.
    let built = p.kiln(&["-f", "nope.Dockerfile", "-"], Some(&gz));
    assert_eq!(built.code, 1);
    assert!(built.output.contains("nope.Dockerfile"), "{}", built.output);
}

#[test]
fn run_mounts_take_buildkits_defaults() {
    let p = Peers::new();
    let secret = p.kiln.path("secret.txt");
    fs::write(&secret, "s3cret\n").unwrap();
    let ctx = p.context(
        "mount-defaults",
        &[
            ("dir/sub/f", "bound\n"),
            (
                "Dockerfile",
                "FROM {BASE}\nWORKDIR /src\n\
                 RUN --mount=type=bind,source=dir cat sub/f > /out-bind\n\
                 RUN --mount=type=cache,target=cache,uid=1000,mode=0700 touch cache/x && stat -c '%u %a' cache > /out-cache\n\
                 RUN --mount=type=bind,source=dir,rw touch sub/new && ls sub > /out-rw\n\
                 RUN --mount=type=tmpfs ls -A . > /out-tmpfs\n\
                 RUN --mount=type=secret,id=tok cat /run/secrets/tok > /out-secret && stat -c '%u %g %a' /run/secrets/tok >> /out-secret\n\
                 RUN --mount=type=secret,source=tok,target=/s,mode=0444,uid=1000 stat -c '%u %a' /s > /out-secret2\n",
            ),
        ],
    );
    let spec = format!("id=tok,src={}", secret.display());
    let (bk, kiln) = p.both(&["--secret", &spec, ctx.to_str().unwrap()]);
    let t = tree(&kiln.image);
    // docker 20.10's BuildKit (v0.8) leaves the empty directories it made
    // as mountpoints (`/src/cache`, `/run/secrets`) in the layer; BuildKit
    // since v0.11 removes them, with the parents made to hold them
    // (executor/stubs.go), and so does kiln. Everything else must match.
    let mut expected = tree(&bk.image);
    for stub in ["src/cache", "run/secrets", "run"] {
        let node = expected.remove(stub).unwrap();
        assert_eq!(node.kind, 'd', "{stub}");
    }
    assert_same_tree(&expected, &t);
    assert_eq!(config(&kiln.image), config(&bk.image));
    assert_eq!(history(&kiln.image), history(&bk.image));
    assert!(
        !t.contains_key("src/sub"),
        "a bind mount leaves nothing behind"
    );
    assert!(!t.contains_key("run/secrets/tok"));
    // A mount over the root is refused by both.
    let bad = p.context(
        "mount-root",
        &[(
            "Dockerfile",
            "FROM {BASE}\nRUN --mount=type=bind,source=. true\n",
        )],
    );
    let bk = p.buildkit(&[bad.to_str().unwrap()], None);
    let kiln = p.kiln(&[bad.to_str().unwrap()], None);
    assert_ne!(bk.code, 0);
    assert_eq!(kiln.code, 1, "{}", kiln.output);
    assert!(
        kiln.output.contains("invalid mount target \"/\""),
        "{}",
        kiln.output
    );
}

#[test]
fn a_cache_mount_from_a_stage_starts_with_its_source() {
    let p = Peers::new();
    let ctx = p.context(
        "cache-from",
        &[(
            "Dockerfile",
            "FROM {BASE} AS other\nRUN mkdir -p /o/d && echo other > /o/d/f\n\
             FROM {BASE}\n\
             RUN --mount=type=cache,id=seeded,target=/c4,from=other,source=/o cat /c4/d/f > /out && echo more > /c4/more\n\
             RUN --mount=type=cache,id=seeded,target=/c5 ls -A /c5 > /out-plain\n\
             RUN --mount=type=cache,id=seeded,target=/c6,from=other,source=/o ls /c6 > /out-again\n",
        )],
    );
    let (bk, kiln) = p.both(&[ctx.to_str().unwrap()]);
    assert_eq!(bk.code, 0, "{}", bk.output);
    assert_eq!(kiln.code, 0, "{}", kiln.output);
    let (b, k) = (tree(&bk.image), tree(&kiln.image));
    assert_eq!(k["out"], b["out"], "the seeded cache reads the same");
    // The same id without the base is another cache (empty); with the
    // same base again it is the first one, with what the step wrote.
    assert_eq!(k["out-plain"], b["out-plain"]);
    assert_eq!(k["out-again"], b["out-again"]);
}

#[test]
fn an_escaped_escape_ends_the_line() {
    let p = Peers::new();
    let ctx = p.context(
        "escaped-escape",
        &[(
            "Dockerfile",
            "FROM {BASE}\nENV C trailing\\\\backslash\\\\\nRUN echo \"$C\" > /c\n",
        )],
    );
    let (_, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    let env = config(&kiln.image)["Env"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e == "C=trailing\\backslash\\"),
        "{env}"
    );
}

#[test]
fn validation_happens_before_any_step_runs() {
    let p = Peers::new();
    let ctx = p.context(
        "validate",
        &[(
            "Dockerfile",
            "FROM {BASE}\nRUN echo ran-the-run-step\nEXPOSE notaport\n",
        )],
    );
    let bk = p.buildkit(&[ctx.to_str().unwrap()], None);
    let kiln = p.kiln(&[ctx.to_str().unwrap()], None);
    assert_ne!(bk.code, 0, "{}", bk.output);
    assert_eq!(kiln.code, 1, "{}", kiln.output);
    assert!(!bk.output.contains("ran-the-run-step"));
    assert!(!kiln.output.contains("ran-the-run-step"), "{}", kiln.output);
    assert!(kiln.output.contains("notaport"), "{}", kiln.output);

    // A bad STOPSIGNAL and a --from index that names no earlier stage
    // fail before any step, with BuildKit's words.
    for (name, df, words) in [
        (
            "bad-signal",
            "FROM {BASE}\nRUN echo ran-the-run-step\nSTOPSIGNAL NOTASIG\n",
            "Invalid signal: NOTASIG",
        ),
        (
            "from-self",
            "FROM {BASE}\nRUN echo ran-the-run-step\nCOPY --from=0 /etc/passwd /p\n",
            "circular dependency detected on stage",
        ),
        (
            "from-missing",
            "FROM {BASE}\nRUN echo ran-the-run-step\nCOPY --from=1 /etc/passwd /p\n",
            "invalid stage index 1",
        ),
    ] {
        let ctx = p.context(name, &[("Dockerfile", df)]);
        let bk = p.buildkit(&[ctx.to_str().unwrap()], None);
        let kiln = p.kiln(&[ctx.to_str().unwrap()], None);
        assert_ne!(bk.code, 0, "{name}: {}", bk.output);
        assert!(bk.output.contains(words), "{name}: {}", bk.output);
        assert_eq!(kiln.code, 1, "{name}: {}", kiln.output);
        assert!(kiln.output.contains(words), "{name}: {}", kiln.output);
        assert!(
            !kiln.output.contains("ran-the-run-step"),
            "{name}: {}",
            kiln.output
        );
    }

    // An unknown --from is the COPY line's fault, and says what it is (an
    // image on a loopback port nobody serves: no lookup leaves the machine).
    let ctx = p.context(
        "unknown-from",
        &[(
            "Dockerfile",
            "FROM {BASE}\nRUN echo ran-the-run-step\nCOPY --from=127.0.0.1:9/nosuchstage /x /y\n",
        )],
    );
    let kiln = p.kiln(&[ctx.to_str().unwrap()], None);
    assert_eq!(kiln.code, 1);
    // Resolved (and not found) before any step, as BuildKit does.
    assert!(!kiln.output.contains("ran-the-run-step"), "{}", kiln.output);
    assert!(kiln.output.contains("Dockerfile:3"), "{}", kiln.output);
    assert!(
        kiln.output.contains("--from=127.0.0.1:9/nosuchstage"),
        "{}",
        kiln.output
    );

    // --security=insecure needs --allow security.insecure, and then runs
    // with every capability.
    let ctx = p.context(
        "insecure",
        &[(
            "Dockerfile",
            "FROM {BASE}\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n",
        )],
    );
    let refused = p.kiln(&[ctx.to_str().unwrap()], None);
    assert_eq!(refused.code, 1);
    assert!(
        refused.output.contains("--allow security.insecure"),
        "{}",
        refused.output
    );
    let allowed = p.kiln(
        &["--allow", "security.insecure", ctx.to_str().unwrap()],
        None,
    );
    assert_eq!(allowed.code, 0, "{}", allowed.output);
    let caps = tool_cat(&allowed.image, "/caps");
    let bits = u64::from_str_radix(caps.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(bits & (1 << 21) != 0, "CAP_SYS_ADMIN in {caps}");

    // A remote context is not fetched: a clear error, no network.
    let remote = p.kiln(&["https://github.com/example/app.git"], None);
    assert_eq!(remote.code, 1);
    assert!(
        remote.output.contains("not supported yet"),
        "{}",
        remote.output
    );
}

fn tool_cat(image: &str, path: &str) -> String {
    common::tool(
        common::buildkit::DOCKER,
        &["run", "--rm", "--network", "none", image, "cat", path],
    )
}

#[test]
fn config_and_history_are_buildkits() {
    let p = Peers::new();
    let ctx = p.context(
        "config-history",
        &[
            ("a", "a\n"),
            (
                "Dockerfile",
                "FROM {BASE}\nARG A1\nARG A2=two\nENV FOO=bar\n\
                 COPY --chown=1000:1000 --chmod=644 a /a\nRUN echo $A2 > /a2\n\
                 LABEL k=v\nEXPOSE 8080 53/udp 80\nVOLUME /data\nSTOPSIGNAL SIGINT\n\
                 SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
                 HEALTHCHECK --interval=5s --retries=2 CMD cat /a\n\
                 ONBUILD RUN echo hi\nUSER app\nWORKDIR /home/app\n\
                 ENTRYPOINT [\"/bin/sh\"]\nCMD echo hi\n",
            ),
        ],
    );
    let (bk, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    assert!(history(&kiln.image)
        .iter()
        .any(|h| h == "RUN |2 A1= A2=two /bin/sh -c echo $A2 > /a2 # buildkit"));
    assert_eq!(config(&bk.image)["ArgsEscaped"], true);

    // FROM scratch: PATH and WorkingDir "/" as BuildKit's empty image.
    let ctx = p.context(
        "scratch",
        &[("a", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\n")],
    );
    let (bk, kiln) = p.both(&[ctx.to_str().unwrap()]);
    assert_eq!(config(&kiln.image), config(&bk.image));
    assert_eq!(config(&kiln.image)["WorkingDir"], "/");
}

#[test]
fn build_flags_docker_scripts_use() {
    let p = Peers::new();
    let ctx = p.context(
        "flags",
        &[(
            "Dockerfile",
            "FROM {BASE}\nRUN grep -w example.test /etc/hosts > /hosts\n",
        )],
    );
    let (bk, kiln) = p.both(&[
        "--add-host",
        "example.test:10.1.2.3",
        "--rm",
        "--force-rm",
        ctx.to_str().unwrap(),
    ]);
    assert_same_tree(&tree(&bk.image), &tree(&kiln.image));
    let kiln = p.kiln(&["--rm=false", ctx.to_str().unwrap()], None);
    assert_eq!(kiln.code, 1, "no --add-host, no line: {}", kiln.output);
    let bad = p.kiln(&["--add-host", "nonsense", ctx.to_str().unwrap()], None);
    assert_eq!(bad.code, 1);
    assert!(bad.output.contains("HOST:IP"), "{}", bad.output);
}

/// Runs git in `dir` with a fixed commit date.
fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2024-05-06T07:08:09Z")
        .env("GIT_COMMITTER_DATE", "2024-05-06T07:08:09Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn build_time_is_the_commit_time_of_a_clean_git_context() {
    let k = common::Kiln::new();
    let tar = common::busybox_tar(k.dir.path(), "epoch-base", &[]);
    k.ok(&[
        "import",
        tar.to_str().unwrap(),
        "epoch-base:1",
        "-m",
        "base",
    ]);
    let ctx = k.dir.path().join("epoch-ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("a"), "a\n").unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM epoch-base:1\nCOPY a /a\n").unwrap();
    let build = |tag: &str, extra_env: Option<(&str, &str)>| {
        let mut cmd = k.cmd();
        cmd.env_remove("SOURCE_DATE_EPOCH").args([
            "build",
            "--progress",
            "plain",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ]);
        if let Some((key, value)) = extra_env {
            cmd.env(key, value);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        (
            k.inspect(tag)["Created"].as_str().unwrap().to_string(),
            stderr,
        )
    };
    // Not a repository: 0, and the summary says how to get a real date.
    let (created, summary) = build("e:none", None);
    assert_eq!(created, "1970-01-01T00:00:00Z");
    assert!(summary.contains("set SOURCE_DATE_EPOCH"), "{summary}");
    // A clean checkout: the commit time, named in the summary.
    git(&ctx, &["init", "-q"]);
    git(&ctx, &["add", "."]);
    git(&ctx, &["commit", "-q", "-m", "one"]);
    let (created, summary) = build("e:clean", None);
    assert_eq!(created, "2024-05-06T07:08:09Z");
    assert!(
        summary.contains("commit time of the context's git HEAD"),
        "{summary}"
    );
    // The same commit elsewhere gives the same image.
    let copy = k.dir.path().join("epoch-ctx-copy");
    let st = Command::new("cp")
        .arg("-a")
        .arg(&ctx)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let id = |tag: &str| k.inspect(tag)["Id"].as_str().unwrap().to_string();
    let out = k.ok(&["build", "-q", "-t", "e:copy", copy.to_str().unwrap()]);
    assert_eq!(out.trim(), id("e:clean"));
    // A changed tracked file: back to 0. SOURCE_DATE_EPOCH always wins.
    fs::write(ctx.join("a"), "changed\n").unwrap();
    let (created, _) = build("e:dirty", None);
    assert_eq!(created, "1970-01-01T00:00:00Z");
    let (created, summary) = build("e:sde", Some(("SOURCE_DATE_EPOCH", "1700000000")));
    assert_eq!(created, "2023-11-14T22:13:20Z");
    assert!(summary.contains("from SOURCE_DATE_EPOCH"), "{summary}");
    // A value that is no time is an error everywhere kiln dates an image,
    // never a silent "now" or 0.
    for args in [
        vec!["build", ctx.to_str().unwrap()],
        vec!["import", tar.to_str().unwrap(), "e:bad"],
    ] {
        let out = k
            .cmd()
            .env("SOURCE_DATE_EPOCH", "yesterday")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("SOURCE_DATE_EPOCH=yesterday"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn pull_flag_fetches_a_newer_base_from_the_registry() {
    use common::registry::{Auth, Registry};
    let reg = Registry::start(Auth::Anonymous);
    let k = common::Kiln::new();
    let base = format!("{}/team/base:1", reg.host());
    let v1 = common::busybox_tar(k.dir.path(), "pull-v1", &[("version", b"one\n")]);
    k.ok(&["import", v1.to_str().unwrap(), &base]);
    k.ok(&["push", "-q", &base]);
    let ctx = k.dir.path().join("pull-ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN cat /version > /seen\n"),
    )
    .unwrap();
    let seen = |tag: &str| {
        let dest = k.dir.path().join(format!("out-{}", tag.replace(':', "-")));
        let spec = format!("type=local,dest={}", dest.display());
        k.ok(&[
            "build",
            "-q",
            "--pull",
            "-t",
            tag,
            "-o",
            &spec,
            ctx.to_str().unwrap(),
        ]);
        fs::read_to_string(dest.join("seen")).unwrap()
    };
    assert_eq!(seen("p:1"), "one\n");
    // A newer base is pushed from another store: without --pull the local
    // copy would be used; with it, the build sees the new one.
    let other = common::Kiln::new();
    let v2 = common::busybox_tar(other.dir.path(), "pull-v2", &[("version", b"two\n")]);
    other.ok(&["import", v2.to_str().unwrap(), &base]);
    other.ok(&["push", "-q", &base]);
    assert_eq!(seen("p:2"), "two\n");
    // --pull of a base no registry has fails the build and says so.
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/team/nothing:1\nRUN true\n", reg.host()),
    )
    .unwrap();
    let err = k.fails(&["build", "--pull", ctx.to_str().unwrap()]);
    assert!(err.contains("team/nothing"), "{err}");
}

/// Regressions of the one config editor (shared with `import --change`):
/// an absolute WORKDIR is kept as written in the config and history (the
/// directories made are the cleaned path), a relative one is joined and
/// cleaned, and ENTRYPOINT drops the base image's CMD.
#[test]
fn workdir_and_entrypoint_as_buildkit_edits_the_config() {
    let p = Peers::new();
    let ctx = p.context(
        "config-editor",
        &[(
            "Dockerfile",
            "FROM {BASE}\nWORKDIR /srv/../x/\nWORKDIR y/../z/\nRUN pwd > /pwd\n\
             WORKDIR /abs/./w/\nRUN pwd > /pwd2\nENTRYPOINT [\"/bin/sh\"]\n",
        )],
    );
    let (bk, kiln) = p.same_image(&[ctx.to_str().unwrap()]);
    assert_eq!(config(&kiln.image)["WorkingDir"], "/abs/./w/");
    assert!(config(&bk.image).get("Cmd").is_none_or(|c| c.is_null()));
    assert!(history(&kiln.image).iter().any(|h| h == "WORKDIR /x/z"));
}

#[test]
fn sizes_are_measured_as_docker_measures_them() {
    // docker's SIZE is what a layer holds (files and link targets, hard
    // links once), not its tar: a WORKDIR layer is 0 B, a 6-byte COPY 6 B.
    let p = Peers::new();
    let ctx = p.context(
        "sizes",
        &[
            ("a", "hello\n"),
            ("Dockerfile", "FROM {BASE}\nWORKDIR /w\nCOPY a /w/a\n"),
        ],
    );
    let (bk, kiln) = p.both(&[ctx.to_str().unwrap()]);
    let sizes = |history: String| -> Vec<String> { history.lines().map(str::to_string).collect() };
    let docker_history = sizes(common::tool(
        "/usr/bin/docker",
        &["history", "--format", "{{.Size}}", &bk.image],
    ));
    let kiln_history = sizes(
        p.kiln
            .ok(&["history", "--format", "{{.Size}}", &kiln.image]),
    );
    assert_eq!(kiln_history, docker_history);
    assert_eq!(kiln_history[..2], ["6B", "0B"]);
    // The base layer and the image as a whole, to the byte.
    let docker_size = common::tool(
        "/usr/bin/docker",
        &["inspect", "-f", "{{.Size}}", &bk.image],
    );
    let kiln_size = p.kiln.ok(&["inspect", "-f", "{{.Size}}", &kiln.image]);
    assert_eq!(kiln_size.trim(), docker_size.trim());
}

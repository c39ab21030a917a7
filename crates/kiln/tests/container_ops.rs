//! `exec`, `cp`, `top`, `diff`, `commit` and `stats` end to end: real
//! containers from busybox images (as root, network none), docker's flags,
//! output and exit codes, and a committed image run by docker.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{run_tool, tool, Kiln};

/// A container running `busybox sleep`, removed (forced) at the end.
struct Running<'a> {
    k: &'a Kiln,
    id: String,
}

impl<'a> Running<'a> {
    fn start(k: &'a Kiln, args: &[&str]) -> Running<'a> {
        let mut all = vec!["run", "-d", "--network", "none"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["bb", "busybox", "sleep", "1000"]);
        let id = k.ok(&all).trim().to_string();
        Running { k, id }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.k.run(&["rm", "-f", &self.id]);
    }
}

fn kiln_with_busybox() -> Kiln {
    let k = Kiln::new();
    k.import_busybox(
        "bb",
        &[("etc/motd", b"welcome\n"), ("srv/data/a.txt", b"a\n")],
        &[],
    );
    k
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn exec_runs_in_the_container_with_its_environment_user_and_exit_code() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &["--name", "web", "-e", "FROM_RUN=1", "-w", "/srv"]);
    let env = k.ok(&["exec", "web", "env"]);
    assert!(env.contains("FROM_RUN=1\n"), "{env}");
    assert!(
        env.contains(&format!("HOSTNAME={}\n", &c.id[..12])),
        "{env}"
    );
    assert_eq!(k.ok(&["exec", "web", "busybox", "pwd"]), "/srv\n");
    let envfile = k.path("env.list");
    fs::write(&envfile, "# a comment\nFROM_FILE=2\n").unwrap();
    let out = k.ok(&[
        "exec",
        "-u",
        "65534:65534",
        "-w",
        "/tmp",
        "-e",
        "FROM_RUN=override",
        "--env-file",
        envfile.to_str().unwrap(),
        "web",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FROM_RUN $FROM_FILE",
    ]);
    assert_eq!(lines(&out), ["65534", "65534", "/tmp", "override 2"]);
    // A name resolves in the container's /etc/passwd.
    assert_eq!(k.ok(&["exec", "-u", "root", "web", "id", "-u"]), "0\n");
    // `container exec` is the same command.
    assert_eq!(
        k.ok(&["container", "exec", "web", "cat", "/etc/motd"]),
        "welcome\n"
    );
    // The process's exit code is kiln's.
    let out = k.run(&["exec", "web", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Not found 127, cannot be invoked 126, as docker.
    let out = k.run(&["exec", "web", "nope"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("exec: \"nope\": executable file not found in $PATH"));
    let out = k.run(&["exec", "web", "/etc/motd"]);
    assert_eq!(out.status.code(), Some(126));
    // Without -i the process reads nothing, whatever kiln's stdin is.
    let input = k.path("input");
    fs::write(&input, "not for the container\n").unwrap();
    assert_eq!(k.ok_with_stdin(&["exec", "web", "cat"], &input), "");
    // -it needs a terminal to attach (docker's words); -i alone pipes.
    let err = k.fails(&["exec", "-it", "web", "sh"]);
    assert!(err.contains("the input device is not a TTY"), "{err}");
    assert_eq!(
        k.ok_with_stdin(&["exec", "-i", "web", "cat"], &input),
        "not for the container\n"
    );
}

#[test]
fn exec_d_returns_at_once_and_the_process_outlives_kiln() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    let started = Instant::now();
    let out = k.ok(&[
        "exec",
        "-d",
        &c.id,
        "sh",
        "-c",
        "busybox sleep 1; echo done > /tmp/marker",
    ]);
    assert_eq!(out, "");
    assert!(started.elapsed() < Duration::from_millis(900));
    assert!(k.run(&["exec", &c.id, "cat", "/tmp/marker"]).status.code() != Some(0));
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let out = k.run(&["exec", &c.id, "cat", "/tmp/marker"]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
            break;
        }
        assert!(Instant::now() < end, "the detached exec never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A program that cannot run is reported by exec -d itself.
    let out = k.run(&["exec", "-d", &c.id, "nope"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn exec_in_a_stopped_container_is_docker_s_error() {
    let k = kiln_with_busybox();
    let id = k.ok(&["create", "--network", "none", "bb", "true"]);
    let id = id.trim();
    let err = k.fails(&["exec", id, "true"]);
    assert_eq!(
        err,
        format!("Error response from daemon: Container {id} is not running\n")
    );
    let err = k.fails(&["exec", "no-such-container", "true"]);
    assert!(
        err.contains("No such container: no-such-container"),
        "{err}"
    );
    k.ok(&["rm", id]);
}

#[test]
fn cp_follows_docker_s_rules_both_ways() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    let id = c.id.as_str();
    let out = k.path("out");
    fs::create_dir(&out).unwrap();
    let o = |p: &str| out.join(p).to_str().unwrap().to_string();
    // A file to a free name, into a directory, over a file.
    k.ok(&["cp", &format!("{id}:/etc/motd"), &o("motd")]);
    assert_eq!(fs::read_to_string(out.join("motd")).unwrap(), "welcome\n");
    k.ok(&["cp", &format!("{id}:/srv/data/a.txt"), &o("")]);
    assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "a\n");
    k.ok(&["cp", &format!("{id}:/srv/data/a.txt"), &o("motd")]);
    assert_eq!(fs::read_to_string(out.join("motd")).unwrap(), "a\n");
    // A directory: to a free name it becomes it; into a directory under
    // its name; with /. only its contents.
    k.ok(&["cp", &format!("{id}:/srv/data"), &o("copy")]);
    assert!(out.join("copy/a.txt").is_file());
    k.ok(&["cp", &format!("{id}:/srv/data"), &o("copy")]);
    assert!(out.join("copy/data/a.txt").is_file());
    fs::create_dir(out.join("flat")).unwrap();
    k.ok(&["cp", &format!("{id}:/srv/data/."), &o("flat")]);
    assert!(out.join("flat/a.txt").is_file() && !out.join("flat/data").exists());
    // docker's errors.
    let err = k.fails(&["cp", &format!("{id}:/srv/data"), &o("motd")]);
    assert!(err.contains("cannot copy directory"), "{err}");
    let err = k.fails(&["cp", &format!("{id}:/etc/motd"), &o("missing/")]);
    assert!(err.contains("no such directory"), "{err}");
    let err = k.fails(&["cp", &format!("{id}:/etc/motd"), &o("missing/x")]);
    assert!(err.contains("no such file or directory"), "{err}");
    let err = k.fails(&["cp", &format!("{id}:/nope"), &o("x")]);
    assert!(
        err.contains(&format!("No such container:path: {id}:/nope")),
        "{err}"
    );
    let err = k.fails(&["cp", &format!("{id}:/etc/motd/"), &o("x")]);
    assert!(err.contains("not a directory"), "{err}");
    let err = k.fails(&["cp", &format!("{id}:/etc/motd"), &format!("{}/", o("motd"))]);
    assert!(err.contains("not a directory"), "{err}");
    let err = k.fails(&["cp", &o("motd"), &o("x")]);
    assert!(err.contains("must specify at least one container"), "{err}");

    // Into the container: owned by root unless -a.
    let src = k.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), "from host\n").unwrap();
    std::os::unix::fs::chown(src.join("d/f"), Some(1234), Some(1234)).unwrap();
    let s = |p: &str| src.join(p).to_str().unwrap().to_string();
    k.ok(&["cp", &s("d"), &format!("{id}:/new")]);
    assert_eq!(
        k.ok(&["exec", id, "busybox", "stat", "-c", "%u:%g %n", "/new/f"]),
        "0:0 /new/f\n"
    );
    k.ok(&["cp", "-a", &s("d"), &format!("{id}:/tmp")]);
    assert_eq!(
        k.ok(&["exec", id, "busybox", "stat", "-c", "%u:%g", "/tmp/d/f"]),
        "1234:1234\n"
    );
    k.ok(&["cp", &s("d/f"), &format!("{id}:/etc/")]);
    assert_eq!(k.ok(&["exec", id, "cat", "/etc/f"]), "from host\n");
    let err = k.fails(&["cp", &s("d/f"), &format!("{id}:/nodir/x")]);
    assert!(
        err.contains(&format!("No such container:path: {id}:/nodir/x")),
        "{err}"
    );
    // Files copied out are the caller's.
    k.ok(&["cp", &format!("{id}:/tmp/d/f"), &o("owned")]);
    assert_eq!(fs::metadata(out.join("owned")).unwrap().uid(), 0);
}

#[test]
fn cp_streams_tar_and_never_leaves_the_container_s_root() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    let id = c.id.as_str();
    // `-` as destination: a tar of the source on stdout.
    let out = k.run(&["cp", &format!("{id}:/srv/data"), "-"]);
    assert!(out.status.success());
    let tar_file = k.path("data.tar");
    fs::write(&tar_file, &out.stdout).unwrap();
    let listing = tool("tar", &["-tf", tar_file.to_str().unwrap()]);
    assert_eq!(lines(&listing), ["data", "data/a.txt"]);
    // `-` as source: a tar extracted into a directory.
    k.ok_with_stdin(&["cp", "-", &format!("{id}:/tmp")], &tar_file);
    assert_eq!(k.ok(&["exec", id, "cat", "/tmp/data/a.txt"]), "a\n");
    let err = k.fails(&["cp", "-", &format!("{id}:/etc/motd")]);
    assert!(err.contains("must be a directory"), "{err}");
    // A link to a host path resolves inside the container, both ways.
    k.ok(&["exec", id, "busybox", "ln", "-s", "/", "/escape"]);
    k.ok(&["exec", id, "busybox", "ln", "-s", "/etc", "/etclink"]);
    let marker = format!("kiln-cp-escape-{}", std::process::id());
    let host_file = k.path(&marker);
    fs::write(&host_file, "x").unwrap();
    k.ok(&[
        "cp",
        host_file.to_str().unwrap(),
        &format!("{id}:/escape/tmp/"),
    ]);
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    assert_eq!(k.ok(&["exec", id, "cat", &format!("/tmp/{marker}")]), "x");
    let got = k.path("motd-through-link");
    k.ok(&["cp", &format!("{id}:/etclink/motd"), got.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&got).unwrap(), "welcome\n");
    // The link itself is copied, or (-L) what it points to.
    let link = k.path("link");
    k.ok(&["cp", &format!("{id}:/etclink"), link.to_str().unwrap()]);
    assert_eq!(fs::read_link(&link).unwrap().to_str(), Some("/etc"));
    let followed = k.path("followed");
    k.ok(&[
        "cp",
        "-L",
        &format!("{id}:/etclink"),
        followed.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(followed.join("motd")).unwrap(),
        "welcome\n"
    );
}

#[test]
fn cp_reaches_stopped_containers_and_their_volumes() {
    let k = kiln_with_busybox();
    let id = k.ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "cpvol:/data",
        "bb",
        "cat",
        "/in-layer",
        "/data/in-volume",
    ]);
    let id = id.trim();
    let f = k.path("f");
    fs::write(&f, "copied\n").unwrap();
    k.ok(&["cp", f.to_str().unwrap(), &format!("{id}:/in-layer")]);
    k.ok(&["cp", f.to_str().unwrap(), &format!("{id}:/data/in-volume")]);
    assert!(k.root.join("volumes/cpvol/_data/in-volume").is_file());
    let back = k.path("back");
    k.ok(&["cp", &format!("{id}:/in-layer"), back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&back).unwrap(), "copied\n");
    assert_eq!(k.ok(&["start", "-a", id]), "copied\ncopied\n");
    assert_eq!(k.ok(&["diff", id]), "A /in-layer\n");
    k.ok(&["rm", id]);
}

#[test]
fn top_lists_the_container_s_processes() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    let out = k.ok(&["top", &c.id]);
    let rows = lines(&out);
    let titles: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    // docker's tabwriter: columns at least 20 wide.
    assert!(rows[0].starts_with("UID                 PID"), "{out}");
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows[1].ends_with("busybox sleep 1000"), "{out}");
    k.ok(&["exec", "-d", &c.id, "busybox", "sleep", "999"]);
    let end = Instant::now() + Duration::from_secs(10);
    while !k.ok(&["container", "top", &c.id]).contains("sleep 999") {
        assert!(Instant::now() < end, "the exec'd process never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // ps options pass through.
    let out = k.ok(&["top", &c.id, "-o", "pid,comm"]);
    assert_eq!(
        lines(&out)[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    let stopped = k.ok(&["create", "bb", "true"]);
    let err = k.fails(&["top", stopped.trim()]);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn diff_shows_the_container_s_changes_as_docker_does() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &["-v", "/vol", "--tmpfs", "/scratch"]);
    // A fresh container changed nothing: the runtime's files do not count.
    assert_eq!(k.ok(&["diff", &c.id]), "");
    k.ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "echo x > /etc/new; echo y >> /etc/motd; rm /srv/data/a.txt; echo v > /vol/f; echo t > /scratch/f",
    ]);
    assert_eq!(
        lines(&k.ok(&["diff", &c.id])),
        [
            "C /etc",
            "C /etc/motd",
            "A /etc/new",
            "C /srv",
            "C /srv/data",
            "D /srv/data/a.txt"
        ]
    );
    assert_eq!(k.ok(&["container", "diff", &c.id]), k.ok(&["diff", &c.id]));
}

#[test]
fn commit_makes_an_image_of_the_changes_and_keeps_the_container() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &["-e", "FROM_RUN=1", "-w", "/srv"]);
    k.ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "echo committed > /etc/new; rm /etc/motd",
    ]);
    let out = k.ok(&[
        "commit",
        "-a",
        "Jane <jane@example.com>",
        "-m",
        "the message",
        "-c",
        "ENV ADDED=2",
        "-c",
        r#"CMD ["cat", "/etc/new"]"#,
        &c.id,
        "committed:v1",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let image = k.inspect("committed:v1");
    assert_eq!(image["Id"], id);
    assert_eq!(image["Author"], "Jane <jane@example.com>");
    assert_eq!(image["Comment"], "the message");
    assert_eq!(image["Config"]["WorkingDir"], "/srv");
    let env = image["Config"]["Env"].as_array().unwrap();
    assert!(env.contains(&"FROM_RUN=1".into()) && env.contains(&"ADDED=2".into()));
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let history = k.ok(&["history", "--no-trunc", "committed:v1"]);
    assert!(history.contains("busybox sleep 1000"), "{history}");
    assert!(history.contains("the message"), "{history}");
    // The image runs, with the container's files.
    let out = k.ok(&["run", "--rm", "--network", "none", "committed:v1"]);
    assert_eq!(out, "committed\n");
    let out = k.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:v1",
        "cat",
        "/etc/motd",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // The container is untouched: still running, same changes.
    assert_eq!(
        lines(&k.ok(&["diff", &c.id])),
        ["C /etc", "D /etc/motd", "A /etc/new"]
    );
    assert_eq!(k.ok(&["exec", &c.id, "cat", "/etc/new"]), "committed\n");
    k.ok(&["stop", "-t", "0", &c.id]);
    // A stopped container commits too; no changes gives an empty layer.
    let untagged = k.ok(&["commit", "-p=false", &c.id]);
    assert!(untagged.trim().starts_with("sha256:"));
    let fresh = k.ok(&["create", "--network", "none", "bb", "true"]);
    k.ok(&["container", "commit", fresh.trim(), "empty:1"]);
    let image = k.inspect("empty:1");
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    let err = k.fails(&["commit", "-c", "RUN true", fresh.trim()]);
    assert!(err.contains("RUN"), "{err}");
    k.ok(&["start", &c.id]);
    assert_eq!(k.ok(&["exec", &c.id, "cat", "/etc/new"]), "committed\n");
    k.ok(&["rm", fresh.trim()]);
}

#[test]
fn docker_loads_and_runs_a_committed_image() {
    let info = run_tool("docker", &["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        info.status.success(),
        "dockerd is not running: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    let unique = format!("{} {:?}", std::process::id(), Instant::now());
    k.ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        &format!("echo '{unique}' > /etc/unique"),
    ]);
    let name = format!("kiln-commit/interop:{}", std::process::id());
    k.ok(&[
        "commit",
        "-c",
        r#"CMD ["cat", "/etc/unique"]"#,
        &c.id,
        &name,
    ]);
    let archive = k.path("committed.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), &name]);
    let load = run_tool("docker", &["load", "-i", archive.to_str().unwrap()]);
    struct Rmi(String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = run_tool("docker", &["rmi", "-f", &self.0]);
        }
    }
    let _rmi = Rmi(name.clone());
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let out = tool("docker", &["run", "--rm", "--network", "none", &name]);
    assert_eq!(out, format!("{unique}\n"));
    let out = tool(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "cat",
            "/etc/motd",
        ],
    );
    assert_eq!(out, "welcome\n");
}

#[test]
fn stats_no_stream_shows_docker_s_columns() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &["--name", "measured"]);
    let out = k.ok(&["stats", "--no-stream"]);
    let rows = lines(&out);
    assert_eq!(rows.len(), 2, "{out}");
    for title in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(rows[0].contains(title), "{out}");
    }
    let cells: Vec<&str> = rows[1]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(cells[0], &c.id[..12], "{out}");
    assert_eq!(cells[1], "measured", "{out}");
    assert!(cells[2].ends_with('%'), "{out}");
    assert!(cells[3].contains("iB / "), "{out}");
    assert_eq!(cells[5], "0B / 0B", "{out}");
    assert_eq!(*cells.last().unwrap(), "1", "{out}");
    let out = k.ok(&[
        "container",
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "measured",
    ]);
    assert_eq!(out, "measured 1\n");
    let stopped = k.ok(&["create", "--name", "idle", "bb", "true"]);
    let err = k.fails(&["stats", "--no-stream", stopped.trim()]);
    assert!(err.contains("is not running"), "{err}");
    // -a: the stopped ones too, at zero.
    let out = k.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
    ]);
    // Newest first, as ps lists them.
    assert_eq!(lines(&out).len(), 2, "{out}");
    assert_eq!(lines(&out)[0], "idle 0B / 0B 0", "{out}");
    assert!(
        lines(&out)[1].starts_with("measured ") && lines(&out)[1].ends_with(" 1"),
        "{out}"
    );
}

/// Without `--no-stream`, docker's table is redrawn (screen cleared, cursor
/// home) each second until interrupted; docker prints the same frames.
#[test]
fn stats_streams_until_interrupted() {
    let k = kiln_with_busybox();
    let _c = Running::start(&k, &["--name", "streamed"]);
    let child = k
        .cmd()
        .args(["stats", "--format", "{{.Name}} {{.PIDs}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    // Ended by the signal, as docker's CLI is by Ctrl-C.
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let frames: Vec<&str> = text.split("\x1b[2J\x1b[H").skip(1).collect();
    assert!(frames.len() >= 2, "{text:?}");
    for f in frames {
        assert_eq!(f, "streamed 1\n", "{text:?}");
    }
}

/// Hard links stay hard links, in the tar stream and once extracted, both
/// ways (docker's archive keeps a map of the inodes it has written).
#[test]
fn cp_keeps_hard_links() {
    let k = kiln_with_busybox();
    let c = Running::start(&k, &[]);
    k.ok(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "mkdir /d && echo hi > /d/a && busybox ln /d/a /d/b",
    ]);
    let out = k.path("out");
    fs::create_dir_all(&out).unwrap();
    k.ok(&["cp", &format!("{}:/d", c.id), out.to_str().unwrap()]);
    let (a, b) = (
        fs::metadata(out.join("d/a")).unwrap(),
        fs::metadata(out.join("d/b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    // The stream names the second as a link to the first.
    let tar = k.ok(&["cp", &format!("{}:/d", c.id), "-"]);
    let listed = run_tool_stdin("tar", &["-tvf", "-"], tar.as_bytes());
    assert!(listed.contains("d/b link to d/a"), "{listed}");
    // And into a container: linked there too.
    k.ok(&[
        "cp",
        out.join("d").to_str().unwrap(),
        &format!("{}:/e", c.id),
    ]);
    let inodes = k.ok(&[
        "exec", &c.id, "busybox", "stat", "-c", "%i %h", "/e/a", "/e/b",
    ]);
    let rows = lines(&inodes);
    assert_eq!(rows[0], rows[1], "{inodes}");
    assert!(rows[0].ends_with(" 2"), "{inodes}");
}

fn run_tool_stdin(program: &str, args: &[&str], input: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

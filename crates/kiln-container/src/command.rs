//! What a container runs: docker's merge of the image's ENTRYPOINT/CMD
//! with `--entrypoint` and the arguments, and the check that the program
//! exists in the root before anything starts (so a missing program exits
//! 127 and one that cannot be run 126, with docker's words, whatever the
//! runtime).

use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// `--entrypoint`: not given, given empty (`--entrypoint ""`: no
/// entrypoint), or a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntrypointFlag {
    Image,
    Cleared,
    Program(String),
}

/// The merged `Entrypoint` and `Cmd` (docker's `.Config`) and the argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub argv: Vec<String>,
}

/// docker's rules: the image CMD is used only when there are no
/// arguments and the entrypoint was not overridden; `--entrypoint X`
/// replaces the image's; `--entrypoint ""` removes it.
pub fn resolve(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    flag: &EntrypointFlag,
    args: &[String],
) -> Result<Command, String> {
    let entrypoint: Option<Vec<String>> = match flag {
        EntrypointFlag::Image => image_entrypoint.map(<[String]>::to_vec),
        EntrypointFlag::Cleared => None,
        EntrypointFlag::Program(p) => Some(vec![p.clone()]),
    };
    let cmd: Option<Vec<String>> = if !args.is_empty() {
        Some(args.to_vec())
    } else if *flag == EntrypointFlag::Image {
        image_cmd.map(<[String]>::to_vec)
    } else {
        None
    };
    let argv: Vec<String> = entrypoint
        .iter()
        .flatten()
        .chain(cmd.iter().flatten())
        .cloned()
        .collect();
    if argv.is_empty() {
        return Err("No command specified: the image has no CMD or ENTRYPOINT; give a command after the image name".into());
    }
    Ok(Command {
        entrypoint,
        cmd,
        argv,
    })
}

/// Why a program cannot start: the exit code docker gives (126, 127) and
/// its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRunnable {
    pub code: i32,
    pub message: String,
}

/// Looks up `program` as the runtime will, inside `rootfs` (links resolved
/// within it): a path is checked as is, a bare name along `PATH` from
/// `env` (docker's default when unset). `cwd` resolves relative paths.
pub fn check_executable(
    rootfs: &Path,
    program: &str,
    env: &[String],
    cwd: &str,
) -> Result<(), NotRunnable> {
    let not_found = |what: String| NotRunnable {
        code: 127,
        message: what,
    };
    if program.contains('/') {
        let path = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("{}/{program}", cwd.trim_end_matches('/'))
        };
        return match probe(rootfs, &path) {
            Probe::Executable => Ok(()),
            Probe::Missing => Err(not_found(format!(
                "exec: \"{program}\": stat {program}: no such file or directory"
            ))),
            Probe::NotExecutable => Err(NotRunnable {
                code: 126,
                message: format!("exec: \"{program}\": permission denied"),
            }),
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        match probe(rootfs, &format!("{}/{program}", dir.trim_end_matches('/'))) {
            Probe::Executable => return Ok(()),
            Probe::NotExecutable => denied = true,
            Probe::Missing => {}
        }
    }
    if denied {
        return Err(NotRunnable {
            code: 126,
            message: format!("exec: \"{program}\": permission denied"),
        });
    }
    Err(not_found(format!(
        "exec: \"{program}\": executable file not found in $PATH"
    )))
}

enum Probe {
    Executable,
    NotExecutable,
    Missing,
}

fn probe(rootfs: &Path, path: &str) -> Probe {
    let Ok(root) = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Probe::Missing;
    };
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let Ok(fd) = rustix::fs::openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return Probe::Missing;
    };
    match rustix::fs::fstat(&fd) {
        Ok(st) => {
            let is_file = st.st_mode & 0o170000 == 0o100000;
            if is_file && st.st_mode & 0o111 != 0 {
                Probe::Executable
            } else {
                Probe::NotExecutable
            }
        }
        Err(_) => Probe::Missing,
    }
}

/// The exit status a shell gives a process killed by a signal.
pub fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_entrypoint_and_cmd_table() {
        let ep = v(&["/entry.sh"]);
        let cmd = v(&["serve", "--port", "80"]);
        let img = |f: &EntrypointFlag, a: &[&str]| {
            resolve(Some(&ep), Some(&cmd), f, &v(a)).map(|c| c.argv)
        };
        // Image entrypoint + image cmd.
        assert_eq!(
            img(&EntrypointFlag::Image, &[]).unwrap(),
            v(&["/entry.sh", "serve", "--port", "80"])
        );
        // Args replace the cmd, keep the entrypoint.
        assert_eq!(
            img(&EntrypointFlag::Image, &["x"]).unwrap(),
            v(&["/entry.sh", "x"])
        );
        // --entrypoint drops the image CMD.
        assert_eq!(
            img(&EntrypointFlag::Program("/bin/sh".into()), &[]).unwrap(),
            v(&["/bin/sh"])
        );
        assert_eq!(
            img(&EntrypointFlag::Program("/bin/sh".into()), &["-c", "id"]).unwrap(),
            v(&["/bin/sh", "-c", "id"])
        );
        // --entrypoint "" drops the entrypoint (and the image cmd).
        assert_eq!(img(&EntrypointFlag::Cleared, &["ls"]).unwrap(), v(&["ls"]));
        assert!(img(&EntrypointFlag::Cleared, &[])
            .unwrap_err()
            .contains("No command specified"));
        // No entrypoint: cmd alone.
        let c = resolve(None, Some(&cmd), &EntrypointFlag::Image, &[]).unwrap();
        assert_eq!(c.argv, cmd);
        assert_eq!(c.entrypoint, None);
        assert!(resolve(None, None, &EntrypointFlag::Image, &[]).is_err());
    }

    #[test]
    fn programs_are_looked_up_inside_the_root() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("sh"), "").unwrap();
        std::fs::set_permissions(bin.join("sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "").unwrap();
        // A link out of the root resolves inside it.
        std::os::unix::fs::symlink("/usr/bin/env", bin.join("env")).unwrap();
        let env = v(&["PATH=/bin"]);
        assert!(check_executable(t.path(), "sh", &env, "/").is_ok());
        assert!(check_executable(t.path(), "/bin/sh", &env, "/").is_ok());
        assert_eq!(
            check_executable(t.path(), "nope", &env, "/")
                .unwrap_err()
                .code,
            127
        );
        assert_eq!(
            check_executable(t.path(), "/etc", &env, "/")
                .unwrap_err()
                .code,
            127
        );
        assert_eq!(
            check_executable(t.path(), "/bin", &env, "/")
                .unwrap_err()
                .code,
            126
        );
        assert_eq!(
            check_executable(t.path(), "data", &env, "/")
                .unwrap_err()
                .code,
            126
        );
        assert_eq!(
            check_executable(t.path(), "env", &env, "/")
                .unwrap_err()
                .code,
            127
        );
        let e = check_executable(t.path(), "nope", &env, "/").unwrap_err();
        assert_eq!(
            e.message,
            "exec: \"nope\": executable file not found in $PATH"
        );
    }
}

/// Makes directory `path` (and its missing parents, mode 0755, owned by
/// root) inside `rootfs`, as docker makes a missing working directory;
/// every component resolves inside the root, links included.
pub fn ensure_dir(rootfs: &Path, path: &str) -> std::io::Result<()> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut walked = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !walked.is_empty() {
            walked.push('/');
        }
        walked.push_str(part);
        let open = |p: &str| {
            rustix::fs::openat2(
                &root,
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
        };
        if open(&walked).is_ok() {
            continue;
        }
        // The parent resolved inside the root; the new entry goes there.
        let (parent, name) = match walked.rsplit_once('/') {
            Some((p, n)) => (open(p)?, n.to_string()),
            None => (open(".")?, walked.clone()),
        };
        let parent = rustix::fs::openat(
            &parent,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod dir_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn working_directories_are_made_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("escape")).unwrap();
        ensure_dir(t.path(), "/srv/app/data").unwrap();
        assert!(t.path().join("srv/app/data").is_dir());
        // A link pointing out of the root resolves inside it.
        ensure_dir(t.path(), "/escape/x").unwrap_or(());
        assert!(!outside.path().join("x").exists());
        ensure_dir(t.path(), "/").unwrap();
    }
}

//! `docker top`: a running container's processes, as docker finds them —
//! the host's `ps` (with the caller's options, `-ef` by default) filtered
//! to the container's pids. Those are the processes in its init's pid
//! namespace (`/proc/PID/ns/pid`), whatever cgroup layout the host has.

use std::path::Path;

use crate::engine::Engine;
use crate::error::{io, ContainerError, Result};

/// What `top` prints: `ps`'s titles and the container's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// The host pids of the processes sharing `init`'s pid namespace, `init`
/// first. A namespace that is the caller's own (no pid namespace) gives
/// `init` alone rather than every process of the host.
pub fn namespace_pids(init: i32) -> Result<Vec<i32>> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(&init.to_string()) else {
        return Ok(Vec::new());
    };
    if ns("self").as_ref() == Some(&theirs) {
        return Ok(vec![init]);
    }
    let mut pids = vec![init];
    for e in std::fs::read_dir("/proc").map_err(io("read", "/proc"))? {
        let Ok(e) = e else { continue };
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid != init && ns(&pid.to_string()).as_ref() == Some(&theirs) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// docker's parsePSOutput: the header's words are the titles; each row
/// is split on white space, the last title taking the rest of the line;
/// rows whose `PID` is not in `pids` are left out.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let Some(pid_at) = titles.iter().position(|t| t == "PID") else {
        return Err(ContainerError::InvalidConfig(
            "Couldn't find PID field in ps output".into(),
        ));
    };
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_at].parse::<i32>() else {
            return Err(ContainerError::InvalidConfig(format!(
                "Unexpected pid '{}' in ps output",
                fields[pid_at]
            )));
        };
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
        row.push(fields[last..].join(" "));
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

impl Engine {
    /// `docker top CONTAINER [ps OPTIONS]` of running container `input`.
    pub fn top(&self, input: &str, ps_args: &[String]) -> Result<Top> {
        let (_, init) = self.running(input)?;
        let pids = namespace_pids(init)?;
        let default = ["-ef".to_string()];
        let args = if ps_args.is_empty() {
            &default[..]
        } else {
            ps_args
        };
        let out = std::process::Command::new("ps")
            .args(args)
            .output()
            .map_err(io("run", Path::new("ps")))?;
        if !out.status.success() {
            return Err(ContainerError::InvalidConfig(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container_only_with_the_command_whole() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                   root         412     400  0 10:01 ?        00:00:00 sleep 1000 now\n";
        let top = parse_ps(out, &[412]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(top.titles.len(), 8);
        assert_eq!(
            top.processes,
            [[
                "root",
                "412",
                "400",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 1000 now"
            ]]
        );
        assert!(parse_ps("UID CMD\n", &[1]).is_err());
    }

    #[test]
    fn our_own_namespace_is_not_a_container() {
        let me = std::process::id() as i32;
        assert_eq!(namespace_pids(me).unwrap_or_default(), [me]);
    }
}

//! `docker stats`: a running container's resource use, read from its
//! cgroup (found in `/proc/<init>/cgroup`; cgroup v1 controllers or the v2
//! unified tree, whichever the host has) and its network namespace
//! (`/proc/<init>/net/dev`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::cgroup_dirs;
use crate::containers::Container;
use crate::engine::Engine;
use crate::error::Result;

/// One reading of a container's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// CPU time used, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use without the inactive page cache (docker's figure).
    pub mem_usage: u64,
    /// The cgroup's limit, or the host's memory when it has none.
    pub mem_limit: u64,
    pub pids: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// What `stats --no-stream` shows of one container.
#[derive(Debug, Clone)]
pub struct Stats {
    pub container: Container,
    pub sample: Sample,
    /// Percent of one CPU (docker: of all CPUs times their number, the
    /// same figure) over the sampling interval.
    pub cpu_percent: f64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`).
fn keyed(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Reads the counters of the container whose init is `pid`.
pub fn sample(pid: i32) -> Sample {
    let dirs = cgroup_dirs(pid);
    let dir = |name: &str| dirs.iter().find(|(c, _)| c == name).map(|(_, d)| d.clone());
    let v2 = dir("");
    let mut s = Sample::default();
    let host = host_memory();
    let limit = |l: Option<u64>| match l {
        // v1 says "no limit" with a number near 2^63.
        Some(l) if l > 0 && l < (1 << 62) && (host == 0 || l < host) => l,
        _ => host,
    };
    if let Some(m) = dir("memory").filter(|d| d.join("memory.usage_in_bytes").exists()) {
        let usage = read_u64(&m.join("memory.usage_in_bytes")).unwrap_or(0);
        let inactive = keyed(&m.join("memory.stat"), "total_inactive_file").unwrap_or(0);
        s.mem_usage = usage.saturating_sub(inactive);
        s.mem_limit = limit(read_u64(&m.join("memory.limit_in_bytes")));
    } else if let Some(d) = &v2 {
        let usage = read_u64(&d.join("memory.current")).unwrap_or(0);
        let inactive = keyed(&d.join("memory.stat"), "inactive_file").unwrap_or(0);
        s.mem_usage = usage.saturating_sub(inactive);
        s.mem_limit = limit(read_u64(&d.join("memory.max")));
    }
    if let Some(c) = dir("cpuacct").filter(|d| d.join("cpuacct.usage").exists()) {
        s.cpu_ns = read_u64(&c.join("cpuacct.usage")).unwrap_or(0);
    } else if let Some(d) = &v2 {
        s.cpu_ns = keyed(&d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000;
    }
    let pids_dir = dir("pids").filter(|d| d.join("pids.current").exists());
    if let Some(p) = pids_dir.or_else(|| v2.clone()) {
        s.pids = read_u64(&p.join("pids.current")).unwrap_or(0);
    }
    if let Some(b) = dir("blkio").filter(|d| d.join("blkio.throttle.io_service_bytes").exists()) {
        let text =
            std::fs::read_to_string(b.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let [_, op, n] = f.as_slice() {
                let n: u64 = n.parse().unwrap_or(0);
                match *op {
                    "Read" => s.block_read += n,
                    "Write" => s.block_write += n,
                    _ => {}
                }
            }
        }
    } else if let Some(d) = &v2 {
        let text = std::fs::read_to_string(d.join("io.stat")).unwrap_or_default();
        for field in text.split_whitespace() {
            if let Some(n) = field.strip_prefix("rbytes=") {
                s.block_read += n.parse().unwrap_or(0);
            } else if let Some(n) = field.strip_prefix("wbytes=") {
                s.block_write += n.parse().unwrap_or(0);
            }
        }
    }
    // Every interface but loopback, as docker counts the container's
    // networks.
    let net = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    for l in net.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            s.net_rx += f[0];
            s.net_tx += f[8];
        }
    }
    s
}

impl Engine {
    /// One reading of each running container of `containers` (every
    /// running one when empty; with `all`, the stopped ones too, at zero),
    /// CPU use measured over `interval`. Named containers must run.
    pub fn stats(
        &self,
        containers: &[String],
        all: bool,
        interval: Duration,
    ) -> Result<Vec<Stats>> {
        let mut running: Vec<(Container, Option<i32>)> = Vec::new();
        if containers.is_empty() {
            for c in self.list()? {
                match (c.state.status, c.state.pid) {
                    (crate::record::Status::Running, Some(pid)) => running.push((c, Some(pid))),
                    _ if all => running.push((c, None)),
                    _ => {}
                }
            }
        } else {
            for n in containers {
                let (c, pid) = self.running(n)?;
                running.push((c, Some(pid)));
            }
        }
        let read = |pid: Option<i32>| pid.map(sample).unwrap_or_default();
        let first: Vec<Sample> = running.iter().map(|(_, pid)| read(*pid)).collect();
        let start = Instant::now();
        if !running.is_empty() {
            std::thread::sleep(interval);
        }
        let wall = start.elapsed().as_nanos().max(1) as f64;
        Ok(running
            .into_iter()
            .zip(first)
            .map(|((container, pid), before)| {
                let now = read(pid);
                let cpu = now.cpu_ns.saturating_sub(before.cpu_ns) as f64;
                Stats {
                    container,
                    cpu_percent: cpu / wall * 100.0,
                    sample: now,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_counters_read() {
        let s = sample(std::process::id() as i32);
        assert!(s.mem_limit > 0);
    }
}

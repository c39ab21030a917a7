#!/usr/bin/env bash
# Networking: `run -d -p 127.0.0.1:PORT:80 IMG busybox httpd` to the first
# HTTP 200 through the published port, and requests/s through that port
# (wrk, keep-alive, loopback), and the resident memory of what serves
# the port, for kiln (its host socket and userland proxy in the lean
# monitor), docker (bridge + docker-proxy) and podman (CNI
# bridge + portmap), in one run. kiln twice: as a first container (its
# run makes the kiln0 bridge, which goes with its last container) and
# with another kiln container holding the bridge. Writes bench/results/net.md and
# regenerates bench/RESULTS.md. Loopback only: nothing leaves the machine.
source "$(dirname "$0")/common.sh"
bench_setup
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
command -v podman >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
containers_conf
W=$CACHE/net
RUNS=${RUNS:-10}
DURATION=${DURATION:-10}
K=$W/kiln-root
IMG=kiln-bench/httpd:net
rm -rf "$W" && mkdir -p "$W"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PODMAN=(podman run --ulimit nproc=4096:4096 --ulimit nofile=20000:20000)

# The image: busybox-static and a 4 KB page in /www.
R=$W/rootfs
mkdir -p "$R"/{bin,etc,tmp,root,www}
cp "$(command -v busybox)" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
head -c 4096 /dev/zero | tr '\0' 'k' > "$R/www/index.html"
tar -C "$R" -cf "$W/httpd.tar" .
$KILN --root "$K" import "$W/httpd.tar" "$IMG" >/dev/null
docker import "$W/httpd.tar" "$IMG" >/dev/null
podman import -q "$W/httpd.tar" "$IMG" >/dev/null

kiln_run() { $KILN --root "$K" run -d --name "$1" -p "127.0.0.1:$2:80" "$IMG" busybox httpd -f -p 80 -h /www; }
kiln_rm() { $KILN --root "$K" rm -f "$1"; }
# kiln with the bridge there: another container holds it (started and
# removed outside the timing, see `hold`).
kiln_warm_run() { kiln_run "$@"; }
kiln_warm_rm() { kiln_rm "$@"; }
hold() { $KILN --root "$K" run -d --name "nbhold$$" "$IMG" busybox sleep 600 >/dev/null; }
unhold() { $KILN --root "$K" rm -f "nbhold$$" >/dev/null; }
# Whether kiln0 exists before a run (a cold kiln run must not find it:
# counted, and said in the results, if some other kiln container held it).
bridge_there() { ip link show kiln0 >/dev/null 2>&1 && echo 1 || echo 0; }
docker_run() { docker run -d --name "$1" -p "127.0.0.1:$2:80" "$IMG" busybox httpd -f -p 80 -h /www; }
docker_rm() { docker rm -f "$1"; }
podman_run() { "${PODMAN[@]}" -d --name "$1" -p "127.0.0.1:$2:80" "$IMG" busybox httpd -f -p 80 -h /www; }
podman_rm() { podman rm -f -t 0 "$1"; }

# Milliseconds from `run -d` to the first 200 through the port.
first_200() {
  local tool=$1 port=$2 name=nb$$
  local t0 t1
  t0=$(date +%s%N)
  "${tool}_run" "$name" "$port" >/dev/null
  until curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/index.html" | grep -q 200; do
    sleep 0.002
  done
  t1=$(date +%s%N)
  "${tool}_rm" "$name" >/dev/null
  echo $(( (t1 - t0) / 1000 ))
}

declare -A PORT=([kiln]=18101 [docker]=18102 [podman]=18103 [kiln_warm]=18104)
FIRST_TOOLS="kiln kiln_warm docker podman"
: > "$W/bridge-before-kiln.txt"
for tool in $FIRST_TOOLS; do
  [ "$tool" = kiln_warm ] && hold
  first_200 "$tool" "${PORT[$tool]}" >/dev/null  # warm-up
  [ "$tool" = kiln_warm ] && unhold
  : > "$W/first-$tool.txt"
done
# Interleaved, one run of each tool per round, so a change in the
# machine's load falls on all of them alike.
for _ in $(seq "$RUNS"); do
  for tool in $FIRST_TOOLS; do
    [ "$tool" = kiln ] && bridge_there >> "$W/bridge-before-kiln.txt"
    [ "$tool" = kiln_warm ] && hold
    first_200 "$tool" "${PORT[$tool]}" >> "$W/first-$tool.txt"
    [ "$tool" = kiln_warm ] && unhold
  done
done

# Requests/s through the port: one container each, wrk with 2 threads
# and 32 keep-alive connections for $DURATION s, $ROUNDS interleaved
# rounds (one run of each tool per round; the median round is kept), as
# one 10 s run each swung with the machine's load.
ROUNDS=${ROUNDS:-3}
for tool in kiln docker podman; do
  "${tool}_run" "nbw$$-$tool" "${PORT[$tool]}" >/dev/null
  until curl -s -o /dev/null "http://127.0.0.1:${PORT[$tool]}/index.html"; do sleep 0.01; done
done
# A pause before each wrk run: ~30k connections a run leave as many
# TIME_WAIT sockets for 60 s, and a run right after another slows down
# for every tool (docker 3,773 → 2,677 → 1,266 req/s back to back), so
# without it the order of the runs decides the figures.
PAUSE=${PAUSE:-62}
for r in $(seq "$ROUNDS"); do
  for tool in kiln docker podman; do
    sleep "$PAUSE"
    wrk -t2 -c32 -d"${DURATION}s" "http://127.0.0.1:${PORT[$tool]}/index.html" > "$W/wrk-$tool-$r.txt"
  done
done
# What stays resident for a container with a published port, outside
# the container: kiln's monitor (which relays the port); docker's shim
# and its docker-proxy for the port; podman's conmon (as root its ports
# are kernel DNAT and a socket conmon holds). VmRSS in KiB.
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
parent() { awk '/^PPid/{print $2}' "/proc/$1/status"; }
kpid=$($KILN --root "$K" inspect -f '{{.State.Pid}}' "nbw$$-kiln")
kmon=$(parent "$kpid")
dpid=$(docker inspect -f '{{.State.Pid}}' "nbw$$-docker")
dproxy=$(pgrep -f "docker-proxy .*-host-port ${PORT[docker]}( |$)" | head -1)
ppid_=$(podman inspect -f '{{.State.Pid}}' "nbw$$-podman")
{
  echo "kiln $(rss "$kmon") $(tr -d '\0' < "/proc/$kmon/comm")"
  proxy_rss=0
  [ -n "$dproxy" ] && proxy_rss=$(rss "$dproxy")
  echo "docker $(( $(rss "$(parent "$dpid")") + proxy_rss )) $(tr -d '\0' < "/proc/$(parent "$dpid")/comm")+docker-proxy"
  echo "podman $(rss "$(parent "$ppid_")") $(tr -d '\0' < "/proc/$(parent "$ppid_")/comm")"
} > "$W/mem.txt"
for tool in kiln docker podman; do
  "${tool}_rm" "nbw$$-$tool" >/dev/null
done

LOAD="$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
python3 - "$W" "$RUNS" "$DURATION" "$(machine)" "$LOAD" "$ROUNDS" \
  "$(docker info --format '{{.ServerVersion}}')" "$(podman --version | awk '{print $3}')" > "$BENCH_DIR/results/net.md" <<'PY'
import re, statistics, sys
w, runs, duration, machine, load, rounds, dver, pver = sys.argv[1:]
tools = ["kiln", "docker", "podman"]
first = {t: statistics.median(int(x) for x in open(f"{w}/first-{t}.txt").read().split()) / 1000 for t in tools + ["kiln_warm"]}
bridge_before = open(f"{w}/bridge-before-kiln.txt").read().split().count("1")
rps = {}
rps_all = {}
for t in tools:
    runs_t = []
    for r in range(1, int(rounds) + 1):
        text = open(f"{w}/wrk-{t}-{r}.txt").read()
        m = re.search(r"Requests/sec:\s+([\d.]+)", text)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
        runs_t.append((float(m.group(1)) if m else 0.0, errors.group(0) if errors else "none"))
    runs_t.sort()
    rps[t] = runs_t[len(runs_t) // 2]
    rps_all[t] = [round(x[0]) for x in runs_t]
print("## Networking: published ports, kiln vs docker and podman")
print()
print(f"Workload: `run -d -p 127.0.0.1:PORT:80 IMG busybox httpd -f -p 80 -h /www` (busybox-static, a 4 KB page). Machine: {machine}; load average {load}. docker {dver} (bridge, docker-proxy for loopback), podman {pver} (CNI bridge, portmap). kiln: the kiln0 bridge, its host socket and userland proxy in the monitor (loopback clients go through the proxy; remote clients are DNATed).")
print()
print(f"Time from `run -d` to the first HTTP 200 through the port (curl polled every 2 ms), median of {runs} runs after a warm-up, interleaved (kiln, kiln with the bridge there, docker, podman in each round), container removed after each. kiln removes its `kiln0` bridge with the bridge's last container, so a kiln `run` with no other kiln container makes the bridge (link, address, up and the host routes read for a free subnet, all by netlink; kiln's nft table and the iptables FORWARD chain) and its `rm -f` removes it again; the second kiln row has another kiln container holding the bridge (started and removed outside the timing). The bridge was found already there before {bridge_before} of the {runs} first-container kiln runs.")
print()
print("| tool | median | / docker |")
print("|---|---|---|")
names = {"kiln": "kiln (first container: makes kiln0)", "kiln_warm": "kiln (kiln0 already there)"}
for t in ["kiln", "kiln_warm", "docker", "podman"]:
    print(f"| {names.get(t, t)} | {first[t]:.0f} ms | {first[t]/first['docker']:.2f}× |")
print()
print(f"Making the bridge costs the first container {first['kiln'] - first['kiln_warm']:.0f} ms of the median ({first['kiln']/first['kiln_warm']:.2f}× the run with the bridge there).")
print()
print(f"Throughput through the published port: wrk, 2 threads, 32 keep-alive connections, {duration} s, from the host's loopback; {rounds} interleaved rounds, the median round shown (all rounds in the last column):")
print()
print("| tool | requests/s | / docker | errors | rounds |")
print("|---|---|---|---|---|")
for t in tools:
    print(f"| {t} | {rps[t][0]:.0f} | {rps[t][0]/rps['docker'][0]:.2f}× | {rps[t][1]} | {', '.join(map(str, rps_all[t]))} |")
print()
def met(ok):
    return "yes" if ok else "NO"
print("| goal | kiln | met |")
print("|---|---|---|")
print(f"| time to first response ≤ 0.3× docker's (first container, bridge made) | {first['kiln']/first['docker']:.2f}× | {met(first['kiln']/first['docker'] <= 0.3)} |")
print(f"| time to first response ≤ 0.3× docker's (bridge there) | {first['kiln_warm']/first['docker']:.2f}× | {met(first['kiln_warm']/first['docker'] <= 0.3)} |")
print(f"| throughput through the port ≥ docker's | {rps['kiln'][0]/rps['docker'][0]:.2f}× | {met(rps['kiln'][0] >= rps['docker'][0])} |")
print()
print("Resident memory outside the container for one container with a published port, after the wrk rounds (VmRSS; kiln: its monitor, which relays the port; docker: the containerd shim plus the port's docker-proxy; podman: conmon, its loopback port being kernel DNAT):")
print()
print("| tool | processes | RSS |")
print("|---|---|---|")
for line in open(f"{w}/mem.txt"):
    tool, kib, procs = line.split()
    print(f"| {tool} | {procs} | {int(kib)/1024:.1f} MB |")
PY
cat "$BENCH_DIR/results/net.md"
bash "$BENCH_DIR/collect.sh"

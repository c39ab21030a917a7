#!/usr/bin/env bash
# kiln serve against the distribution registry (Debian's docker-registry
# 2.8), in one run, both on loopback with filesystem storage: manifest GET
# by tag and by digest (req/s, p50/p99 latency under wrk load), 1 MiB and
# 100 MiB blob GET throughput, monolithic and chunked push throughput
# (100 MiB of fresh random bytes per push), and the idle server's RSS.
# Usage: bash bench/serve.sh   (KILN=path skips the setup and release build)
# Writes bench/results/serve.md and regenerates bench/RESULTS.md; deletes
# its registries' data at the end.
# RSS_ONLY=1 measures only the idle RSS (what a loaded machine can still
# measure: it does not depend on CPU time): five fresh `kiln serve`
# starts, each after one request, split into anonymous and file-backed
# pages (BEFORE=path: a baseline binary too, interleaved), and
# distribution's; writes bench/results/serve-rss.md.
source "$(dirname "$0")/common.sh"
if [ -z "${KILN:-}" ]; then bench_setup; fi
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
W=$CACHE/serve
DUR=${DUR:-10s}
CONN=${CONN:-16}
rm -rf "$W"; mkdir -p "$W"
KPORT=${KPORT:-5101}
DPORT=${DPORT:-5102}
KPID=
trap 'kill ${KPID:-} ${DPID:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$W/dist" "$W/kiln-root"' EXIT
start_distribution "$W" "$DPORT"
# Access logs off on both sides (distribution's accesslog is disabled too).
"$KILN" --root "$W/kiln-root" serve --addr "127.0.0.1:$KPORT" --log-format off > "$W/kiln.log" 2>&1 &
KPID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$KPORT/v2/" >/dev/null && break; sleep 0.1; done
sleep 1
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
rss() { awk '/VmRSS/{printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
KRSS=$(rss $KPID); DRSS=$(rss $DPID)

if [ -n "${RSS_ONLY:-}" ]; then
  # The same measure as below (after startup and one request, idle for a
  # second), on fresh processes; the file-backed part is the binary's
  # pages, the anonymous part the heap, stacks and relocated data.
  # BEFORE=path measures a baseline binary in the same run, interleaved.
  # How many pages of the executable one fault maps depends on how its
  # file sits in the page cache (fault-around, large folios), so each
  # binary is measured from a copy of our own whose cache is dropped and
  # read back sequentially first: the state of a binary installed long
  # ago, read in by readahead.
  kill $KPID; wait $KPID 2>/dev/null || true
  bins=(after)
  cp "$KILN" "$W/kiln-after"
  # `kiln serve` execs the lean kiln-serve next to kiln (the same process,
  # so the PID measured is the server's); a baseline from before it ran
  # the server in kiln itself.
  files_after="$W/kiln-after"
  if [ -x "$(dirname "$KILN")/kiln-serve" ]; then
    cp "$(dirname "$KILN")/kiln-serve" "$W/kiln-serve"; files_after="$W/kiln-after $W/kiln-serve"
  fi
  if [ -n "${BEFORE:-}" ]; then cp "$BEFORE" "$W/kiln-before"; bins=(before after); fi
  : > "$W/rss.txt"
  for i in 1 2 3 4 5; do
    for b in "${bins[@]}"; do
      files="$W/kiln-$b"; [ "$b" = after ] && files=$files_after
      for f in $files; do python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
while os.read(fd, 1 << 20):
    pass' "$f"; done
      "$W/kiln-$b" --root "$W/kiln-root" serve --addr "127.0.0.1:$KPORT" --log-format off > "$W/kiln.log" 2>&1 &
      KPID=$!
      for _ in $(seq 100); do curl -sf "http://127.0.0.1:$KPORT/v2/" >/dev/null && break; sleep 0.1; done
      sleep 1
      echo "$b $(awk '/^Rss:/{r=$2} /^Anonymous:/{a=$2} END{print r, a, r-a}' "/proc/$KPID/smaps_rollup")" >> "$W/rss.txt"
      kill $KPID; wait $KPID 2>/dev/null || true
    done
  done
  python3 - "$W/rss.txt" "$(machine)" "$DRSS" "$LOAD" > "$BENCH_DIR/results/serve-rss.md" <<'PY'
import statistics, sys
path, machine, drss, load = sys.argv[1:]
runs = {}
for l in open(path):
    if l.strip():
        b, *v = l.split()
        runs.setdefault(b, []).append(list(map(int, v)))
med = lambda b, i: statistics.median(r[i] for r in runs[b]) / 1024
print("## Registry server: idle RSS (kiln serve)")
print()
print(f"`RSS_ONLY=1 [BEFORE=old-kiln] bash bench/serve.sh`: {len(runs['after'])} fresh `kiln serve` processes per binary (filesystem storage, access log off), each measured from /proc/PID/smaps_rollup one second after its first request (`GET /v2/`), as the full run measures it; each binary's page cache dropped and read back sequentially before each start (the file-backed part depends on it). Machine: {machine}.")
print()
print("| binary | RSS (median) | anonymous | file-backed | runs |")
print("|---|---|---|---|---|")
for b in runs:
    each = ", ".join(f"{r[0] / 1024:.1f}" for r in runs[b])
    print(f"| {b} | **{med(b, 0):.1f} MB** | {med(b, 1):.1f} MB | {med(b, 2):.1f} MB | {each} |")
print(f"| distribution (VmRSS, as the full run) | {drss} | | | |")
print()
print(f"Goal (issue 15): idle RSS ≤ 10 MB — {'met' if med('after', 0) <= 10 else 'NOT met'} ({med('after', 0):.1f} MB, median). MB here is MiB, as in serve.md.")
print(f"Load average when the run started (RSS does not depend on CPU time, so a loaded machine measures it too): {load}.")
PY
  bash "$BENCH_DIR/collect.sh"
  cat "$BENCH_DIR/results/serve-rss.md"
  exit 0
fi

# The same content in both: a 1 MiB and a 100 MiB blob, a manifest naming
# them, tagged; then the timed pushes.
python3 - "$W" "$KPORT" "$DPORT" <<'PY'
import hashlib, http.client, json, os, statistics, sys, time
w, kport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data
def start(port, repo):
    r, _ = req(port, "POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status == 202, r.status
    return r.getheader("Location")
def path_of(loc):
    return loc.split("127.0.0.1", 1)[-1].split(":", 1)[-1].lstrip("0123456789") if loc.startswith("http") else loc
def monolithic(port, repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = path_of(start(port, repo))
    sep = "&" if "?" in loc else "?"
    r, body = req(port, "PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream"})
    assert r.status == 201, (r.status, body)
    return d
def chunked(port, repo, data, chunk=8 << 20):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = path_of(start(port, repo))
    for off in range(0, len(data), chunk):
        part = data[off:off + chunk]
        r, body = req(port, "PATCH", loc, part, {"Content-Type": "application/octet-stream",
            "Content-Range": f"{off}-{off + len(part) - 1}"})
        assert r.status == 202, (r.status, body)
        loc = path_of(r.getheader("Location"))
    sep = "&" if "?" in loc else "?"
    r, body = req(port, "PUT", f"{loc}{sep}digest={d}")
    assert r.status == 201, (r.status, body)
    return d
small = os.urandom(1 << 20)
big = os.urandom(100 << 20)
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
out = {}
for name, port in [("kiln", kport), ("dist", dport)]:
    digests = [monolithic(port, "bench/app", b) for b in (config, small, big)]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0], "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n}
                   for d, n in ((digests[1], len(small)), (digests[2], len(big)))]}).encode()
    r, body = req(port, "PUT", "/v2/bench/app/manifests/v1", manifest,
                  {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status == 201, (r.status, body)
    out[name] = {"small": digests[1], "big": digests[2], "manifest": r.getheader("Docker-Content-Digest")}
# Pushes: 3 of each kind per registry, interleaved, fresh bytes each time.
times = {(n, k): [] for n in ("kiln", "dist") for k in ("mono", "chunked")}
for i in range(3):
    for kind, fn in (("mono", monolithic), ("chunked", chunked)):
        for name, port in [("kiln", kport), ("dist", dport)]:
            data = os.urandom(100 << 20)
            t = time.monotonic()
            fn(port, f"bench/push{i}", data)
            times[(name, kind)].append(time.monotonic() - t)
for (name, kind), ts in times.items():
    out[name][kind] = 100 / statistics.median(ts)  # MiB/s
json.dump(out, open(f"{w}/seed.json", "w"))
PY

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
load() { # name port path -> wrk output file
  if ! kill -0 "$KPID" 2>/dev/null; then
    wait "$KPID" || echo "kiln serve exited with status $?" >&2
    cat "$W/kiln.log" >&2
    exit 1
  fi
  wrk -t2 -c"$CONN" -d"$DUR" --latency -H "$ACCEPT" "http://127.0.0.1:$2$3" > "$W/wrk-$1-$4.txt"
}
for name in kiln dist; do
  port=$KPORT; [ $name = dist ] && port=$DPORT
  m=$(python3 -c "import json;print(json.load(open('$W/seed.json'))['$name']['manifest'])")
  s=$(python3 -c "import json;print(json.load(open('$W/seed.json'))['$name']['small'])")
  b=$(python3 -c "import json;print(json.load(open('$W/seed.json'))['$name']['big'])")
  load $name $port /v2/bench/app/manifests/v1 tag
  load $name $port "/v2/bench/app/manifests/$m" digest
  load $name $port "/v2/bench/app/blobs/$s" small
  CONN=4 load $name $port "/v2/bench/app/blobs/$b" big
done

python3 - "$W" "$(machine)" "$KRSS" "$DRSS" "$DUR" "$CONN" "$LOAD" > "$BENCH_DIR/results/serve.md" <<'PY'
import json, re, sys
w, machine, krss, drss, dur, conn, load = sys.argv[1:]
seed = json.load(open(f"{w}/seed.json"))
def unit(v, u):
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
def parse(name, kind):
    t = open(f"{w}/wrk-{name}-{kind}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    tr = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", t)
    mb = float(tr.group(1)) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[tr.group(2)]
    lat = {p: unit(*re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", t).groups()) for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, mb, lat, int(errors.group(1)) if errors else 0
print("## Registry server: kiln serve vs the distribution registry")
print()
print(f"Both on loopback with filesystem storage, one run; wrk 2 threads, {conn} connections (4 for the 100 MiB blob), {dur} per row; pushes: medians of 3 of 100 MiB fresh random bytes (chunked: 8 MiB PATCHes with Content-Range), from one Python client. Machine: {machine}. distribution: Debian's docker-registry 2.8.2. Access logs off on both (kiln serve --log-format off; distribution's accesslog disabled).")
print()
print("| operation | kiln serve | distribution | kiln / distribution |")
print("|---|---|---|---|")
for kind, label in (("tag", "manifest GET by tag"), ("digest", "manifest GET by digest")):
    k, d = parse("kiln", kind), parse("dist", kind)
    print(f"| {label} | {k[0]:.0f} req/s | {d[0]:.0f} req/s | {k[0] / d[0]:.2f}× |")
    print(f"| … latency p50 / p99 | {k[2]['50']:.2f} / {k[2]['99']:.2f} ms | {d[2]['50']:.2f} / {d[2]['99']:.2f} ms | |")
for kind, label in (("small", "1 MiB blob GET"), ("big", "100 MiB blob GET")):
    k, d = parse("kiln", kind), parse("dist", kind)
    print(f"| {label} | {k[1]:.0f} MiB/s | {d[1]:.0f} MiB/s | {k[1] / d[1]:.2f}× |")
for kind, label in (("mono", "monolithic push (POST, PUT)"), ("chunked", "chunked push (PATCH × 13, PUT)")):
    k, d = seed["kiln"][kind], seed["dist"][kind]
    print(f"| {label} | {k:.0f} MiB/s | {d:.0f} MiB/s | {k / d:.2f}× |")
print(f"| idle RSS | {krss} | {drss} | |")
def mb(s):
    return float(s.split()[0])
goals = []
rps = min(parse("kiln", k)[0] / parse("dist", k)[0] for k in ("tag", "digest"))
goals.append(("manifest req/s ≥ 2× distribution's", rps >= 2, f"{rps:.1f}× at the lower of tag and digest"))
blob = min(parse("kiln", k)[1] / parse("dist", k)[1] for k in ("small", "big"))
goals.append(("blob GET throughput ≥ distribution's", blob >= 1, f"{blob:.2f}× at the lower of 1 and 100 MiB"))
p99 = max(parse("kiln", k)[2]["99"] for k in ("tag", "digest"))
p50 = min(parse("dist", k)[2]["50"] for k in ("tag", "digest"))
goals.append(("p99 under load below distribution's p50", p99 < p50, f"kiln's worst p99 {p99:.2f} ms, distribution's best p50 {p50:.2f} ms"))
goals.append(("idle RSS ≤ 10 MB", mb(krss) <= 10, f"{krss}"))
print()
print("Against issue 15's goals (computed by the script from the rows above): " + "; ".join(
    f"{g} — {'met' if ok else 'NOT met'} ({why})" for g, ok, why in goals) + ".")
print(f"Load average when the run started (other work on the machine): {load}.")
bad = [(n, k) for n in ("kiln", "dist") for k in ("tag", "digest", "small", "big") if parse(n, k)[3]]
if bad:
    print()
    print(f"Non-2xx answers under load: {bad}")
PY
bash "$BENCH_DIR/collect.sh"
cat "$BENCH_DIR/results/serve.md"

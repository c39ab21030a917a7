#!/usr/bin/env bash
# kiln image analyze --ci vs dive --ci on the same docker-archive: a 1 GB,
# 10-layer image built here with kiln (random data in each layer, some of
# it overwritten or deleted by later layers, plus a thousand small files
# per layer), saved with `kiln save`. Times with hyperfine (both exit 1:
# their CI rules fail on this wasteful image, so failures are ignored),
# peak memory with /usr/bin/time -v. The data lives under /var/tmp and is
# deleted at the end.
# Usage: bash bench/analyze.sh   (uses $CARGO_TARGET_DIR/release/kiln)
# Writes bench/results/analyze.md and its section of bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
KILN=${KILN:-${CARGO_TARGET_DIR:-$REPO/target}/release/kiln}
RUNS=${RUNS:-5}
W=$(mktemp -d /var/tmp/kiln-bench-analyze.XXXXXX)
trap 'rm -rf "$W"' EXIT
command -v dive >/dev/null || { echo "dive missing: run scripts/setup.sh" >&2; exit 1; }

# Base: busybox-static with its shell.
mkdir -p "$W/rootfs/bin" "$W/ctx"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
ln -s busybox "$W/rootfs/bin/sh"
tar -C "$W/rootfs" -cf "$W/base.tar" .
"$KILN" --root "$W/root" import "$W/base.tar" bench/base:1 >/dev/null

# Ten layers of ~100 MB: 20 files of 5 MB and 1000 small files each; from
# the second layer on, each overwrites 4 files of the layer below and
# deletes 4 more (and every third deletes the small files of the one below).
{
  echo "FROM bench/base:1"
  for l in $(seq 1 10); do
    p=$((l - 1))
    run="i=0; while [ \$i -lt 20 ]; do dd if=/dev/urandom of=/l${l}_\$i bs=1M count=5 2>/dev/null; i=\$((i+1)); done"
    run="$run; mkdir /s$l; i=0; while [ \$i -lt 1000 ]; do echo \$i > /s$l/f\$i; i=\$((i+1)); done"
    if [ "$l" -gt 1 ]; then
      run="$run; for i in 0 1 2 3; do dd if=/dev/urandom of=/l${p}_\$i bs=1M count=1 2>/dev/null; done"
      run="$run; rm /l${p}_4 /l${p}_5 /l${p}_6 /l${p}_7"
      [ $((l % 3)) -eq 0 ] && run="$run; rm -r /s$p"
    fi
    echo "RUN $run"
  done
} > "$W/ctx/Dockerfile"
"$KILN" --root "$W/root" build -q --analyze=off -t bench/analyze:1 "$W/ctx" >/dev/null
TAR=$W/image.tar
"$KILN" --root "$W/root" save -o "$TAR" bench/analyze:1
SIZE=$(du -b "$TAR" | cut -f1)

# Same numbers first (the comparison is only fair if both did the work).
(cd "$W" && dive --json dive.json "docker-archive://$TAR" >/dev/null)
"$KILN" --root "$W/root" dive --json "$W/kiln.json" "docker-archive:$TAR"
python3 - "$W/dive.json" "$W/kiln.json" <<'PY'
import json, sys
d, k = (json.load(open(p))["image"] for p in sys.argv[1:])
assert abs(d["efficiencyScore"] - k["efficiencyScore"]) < 5e-5, (d["efficiencyScore"], k["efficiencyScore"])
assert d["inefficientBytes"] == k["inefficientBytes"], (d["inefficientBytes"], k["inefficientBytes"])
print(f"same numbers: efficiency {k['efficiencyScore']:.4f}, wasted {k['inefficientBytes']} bytes, {len(k['fileReference'])} inefficient files")
PY

cd "$W"
hyperfine -N -i -w 1 -r "$RUNS" --export-json "$W/times.json" \
  -n kiln "$KILN --root $W/root image analyze --ci docker-archive:$TAR" \
  -n dive "dive --ci docker-archive://$TAR" >/dev/null 2>&1
rss() { { /usr/bin/time -v "$@" 2>&1 >/dev/null || true; } | awk -F': ' '/Maximum resident/ {print $2}'; }
KILN_RSS=$(rss "$KILN" --root "$W/root" image analyze --ci "docker-archive:$TAR")
DIVE_RSS=$(rss dive --ci "docker-archive://$TAR")

mkdir -p "$BENCH_DIR/results"
python3 - "$W/times.json" "$KILN_RSS" "$DIVE_RSS" "$SIZE" "$(machine)" "$(cut -d' ' -f1 /proc/loadavg)" \
  > "$BENCH_DIR/results/analyze.md" <<'PY'
import json, sys
times, krss, drss, size, machine, load = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(times))["results"]}
km, dm = r["kiln"]["median"], r["dive"]["median"]
krss, drss = int(krss), int(drss)
print("## Image analysis: kiln image analyze vs dive")
print()
print(f"Workload: a {int(size)/1e9:.2f} GB docker-archive (`kiln save`) of a 10-layer image built by kiln: per layer 20 files of 5 MB random data and 1000 small files; later layers overwrite and delete files of the layer below. `--ci` mode for both (same efficiency, wasted bytes and inefficient files checked first). Machine: {machine}; load average at the end {load}. Medians of {len(r['kiln']['times'])} runs after a warm-up (page cache warm); peak RSS from `/usr/bin/time -v`.")
print()
print("| | kiln | dive | kiln / dive |")
print("|---|---|---|---|")
print(f"| time (median) | {km:.3f} s | {dm:.3f} s | {km/dm:.3f}× |")
print(f"| peak memory (max RSS) | {krss/1024:.1f} MB | {drss/1024:.1f} MB | {krss/drss:.3f}× |")
print()
print("kiln reads each layer's tar headers in place (a plain layer inside the archive is walked by seeking over file contents, layers in parallel) and keeps one tree per layer; dive reads and hashes every byte of every file.")
PY
cat "$BENCH_DIR/results/analyze.md"
# The section in RESULTS.md, replaced whole.
python3 - "$BENCH_DIR/RESULTS.md" "$BENCH_DIR/results/analyze.md" <<'PY'
import re, sys
path, section = sys.argv[1:]
text, new = open(path).read(), open(section).read().rstrip() + "\n"
head = "## Image analysis: kiln image analyze vs dive"
pat = re.compile(re.escape(head) + r".*?(?=\n## |\Z)", re.S)
text = pat.sub(new.rstrip("\n"), text) if head in text else text.rstrip("\n") + "\n\n" + new
open(path, "w").write(text)
PY

#!/usr/bin/env bash
# A two-platform build (linux/amd64 native, linux/arm64 through the same
# QEMU binfmt handler) with RUN-heavy steps: kiln build --platform against
# buildah build --platform ... --manifest (Debian's buildah), in one run.
# The base is a two-platform busybox index (the amd64 busybox-static and
# Debian's arm64 busybox-static from scripts/setup.sh) served by the
# distribution registry on 127.0.0.1, which both tools pull once before
# the timed runs; every timed build runs every step (kiln --no-cache;
# buildah without --layers keeps no step cache). buildah uses a storage of
# its own under the work directory.
# Usage: bash bench/multiplatform.sh   (KILN=path skips the setup and release build)
# Writes bench/results/multiplatform.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
if [ -z "${KILN:-}" ]; then bench_setup; fi
command -v buildah >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
containers_conf
RUNS=${RUNS:-3}
LOOP=${LOOP:-100000}
FILES=${FILES:-100}
PORT=${PORT:-5113}
W=$CACHE/multiplatform
ARM=/var/cache/kiln-ci/arm64-busybox/bin/busybox
[ -x "$ARM" ] || { echo "$ARM is missing: run scripts/setup.sh" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"
# buildah keeps its images in a storage of its own under $W (the
# system's driver), removed at the end with everything else.
BUILDAH="buildah --root $W/buildah-root --runroot $W/buildah-run"
DPID=
trap 'kill ${DPID:-} 2>/dev/null; wait 2>/dev/null; $BUILDAH rmi -a -f >/dev/null 2>&1; rm -rf "$W"' EXIT
start_distribution "$W" "$PORT"

# The base: one busybox root per platform, joined in an index and pushed.
K="$KILN --root $W/kiln-root"
for arch in amd64 arm64; do
  mkdir -p "$W/$arch/bin" "$W/$arch/tmp"
  if [ $arch = amd64 ]; then cp /bin/busybox "$W/$arch/bin/"; else cp "$ARM" "$W/$arch/bin/busybox"; fi
  ln -sf busybox "$W/$arch/bin/sh"
  tar -C "$W/$arch" -cf "$W/$arch.tar" .
  $K import --platform linux/$arch "$W/$arch.tar" bb:$arch >/dev/null
done
BASE=127.0.0.1:$PORT/kiln-bench/bb:multi
$K manifest create "$BASE" bb:amd64 bb:arm64 >/dev/null
$K push -q "$BASE" >/dev/null
# A fresh kiln store for the builds, so the base is pulled as a user would.
K="$KILN --root $W/kiln-build-root"

CTX=$W/ctx
mkdir -p "$CTX"
cat > "$CTX/Dockerfile" <<DF
FROM $BASE
RUN i=0; s=0; while [ \$i -lt $LOOP ]; do s=\$((s+i%7)); i=\$((i+1)); done; echo \$s > /sum
RUN busybox mkdir /data && i=0; while [ \$i -lt $FILES ]; do busybox seq 1 500 > /data/f\$i; i=\$((i+1)); done
DF

KB="$K build -q --no-cache --platform linux/amd64,linux/arm64 -t kiln-bench/mp:1 $CTX"
BB="$BUILDAH build -q --tls-verify=false --platform linux/amd64,linux/arm64 --manifest kiln-bench/mp:1 $CTX"
RM="$BUILDAH manifest rm kiln-bench/mp:1 >/dev/null 2>&1 || true"
# Warm-up: both pull the base, and the results are checked.
$KB >/dev/null
for p in amd64:x86_64 arm64:aarch64; do
  got=$($K run --rm --platform linux/${p%%:*} kiln-bench/mp:1 busybox uname -m)
  [ "$got" = "${p##*:}" ] || { echo "kiln's linux/${p%%:*} image runs on $got" >&2; exit 1; }
done
eval "$RM"; $BB >/dev/null
n=$($BUILDAH manifest inspect kiln-bench/mp:1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["manifests"]))')
[ "$n" = 2 ] || { echo "buildah's list has $n images" >&2; exit 1; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
sync
hyperfine -r "$RUNS" --export-json "$W/h.json" --style basic \
  -n "kiln build --platform (2)" "$KB" \
  -n "buildah build --platform (2) --manifest" --prepare "$RM" "$BB" >&2
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
KINFO=$($KILN version 2>/dev/null | head -1 || true)

mkdir -p "$BENCH_DIR/results"
python3 - "$W/h.json" "$LOAD" "$LOAD_END" "$RUNS" "$LOOP" "$FILES" "$KILN" "$(buildah --version)" > "$BENCH_DIR/results/multiplatform.md" <<'PY'
import json, statistics, sys
h, load, load_end, runs, loop, files, kiln, buildah = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(h))["results"]}
k = r["kiln build --platform (2)"]
b = r["buildah build --platform (2) --manifest"]
km, bm = statistics.median(k["times"]), statistics.median(b["times"])
print("## Multi-platform build: kiln against buildah (issue 19)")
print()
print(f"A Dockerfile on a two-platform busybox base served by the distribution registry on 127.0.0.1: a shell loop of {loop} iterations, then {files} files written by `busybox seq` (one exec each), for linux/amd64 (native) and linux/arm64 (QEMU user emulation through the same binfmt handler for both tools). Every step runs in every timed build (kiln `--no-cache`; buildah without `--layers`); the base is pulled before timing. Medians of {runs} runs (hyperfine), both tools in one run. kiln binary: `{kiln}`; {buildah}.")
print()
print("| build | median | min | max |")
print("|---|---|---|---|")
for name, x in (("kiln build --platform linux/amd64,linux/arm64", k), ("buildah build --platform linux/amd64,linux/arm64 --manifest", b)):
    print(f"| {name} | {statistics.median(x['times']):.2f} s | {min(x['times']):.2f} s | {max(x['times']):.2f} s |")
ratio = km / bm
print()
print(f"kiln / buildah: {ratio:.2f}× (issue 19's goal ≤ 0.5×: {'met' if ratio <= 0.5 else 'NOT met'}). Load average at the start {load}, at the end {load_end} (other work on the machine: the figures are relative, not absolute).")
PY
bash "$BENCH_DIR/collect.sh"
cat "$BENCH_DIR/results/multiplatform.md"

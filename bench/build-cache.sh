#!/usr/bin/env bash
# kiln build --cache-from through the local distribution registry: a
# fresh root (the base image only, as a new CI runner) that imports a
# mode=max cache another root exported, against a cold build in the same
# kind of fresh root. Workload: bench/build.sh's (common.sh
# build_workload: 3 stages, ~130 MB context, Debian minbase base).
# Issue 19's goal: a full cache hit from the registry in at most 2 s.
# Checks the two roots' image IDs are equal. Writes
# bench/results/build-cache.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
bench_setup
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/build-cache
RUNS=${RUNS:-5}
PORT=${PORT:-5103}
# The cache's layer compression (buildx's compression=): gzip, zstd or
# uncompressed.
COMPRESSION=${COMPRESSION:-gzip}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# Its own copy of the context: bench/build.sh changes a file in its own.
CTX=$W/ctx
rm -rf "$W/a" "$W/b" "$W/base-root" "$W/dist"; mkdir -p "$W"
build_workload "$CTX"
echo ".complete" > "$CTX/.dockerignore"
$KILN --root "$W/base-root" import "$ROOTFS" kiln-bench/deb:1 >/dev/null

DPID=
trap 'kill ${DPID:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$W/dist" "$W/a" "$W/b"' EXIT
start_distribution "$W" "$PORT"

REF=127.0.0.1:$PORT/kiln-bench/cache:max
# Machine A: a cold build that exports its cache.
cp -a "$W/base-root" "$W/a"
T0=$(date +%s.%N)
$KILN --root "$W/a" build -q -t kiln-bench/app:1 --cache-to "type=registry,ref=$REF,mode=max,compression=$COMPRESSION" "$CTX" > "$W/a.id"
T1=$(date +%s.%N)
CACHE_MB=$(du -sm "$W/dist" | cut -f1)
# The bytes the cache push sent: the artifact's config and layers.
CACHE_BYTES=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$PORT/v2/kiln-bench/cache/manifests/max" |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))')
echo "cache artifact ($COMPRESSION): $CACHE_BYTES bytes"

FRESH="rm -rf $W/b && cp -a $W/base-root $W/b && sync"
hyperfine --show-output --runs "$RUNS" --prepare "$FRESH" --export-json "$W/cache.json" \
  -n "cold build (fresh root)" "$KILN --root $W/b build -q -t kiln-bench/app:1 $CTX" \
  -n "cache import from the registry (fresh root)" "$KILN --root $W/b build -q -t kiln-bench/app:1 --cache-from type=registry,ref=$REF $CTX"
# The last run imported: the same image as machine A's.
B_ID=$($KILN --root "$W/b" inspect --format '{{.Id}}' kiln-bench/app:1)
A_ID=$(cat "$W/a.id")
SAME=no; [ "$A_ID" = "$B_ID" ] && SAME=yes
FETCHED_MB=$(du -sm "$W/b/blobs" | cut -f1)
BASE_MB=$(du -sm "$W/base-root/blobs" | cut -f1)

python3 - "$W/cache.json" "$(machine)" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$RUNS" "$CACHE_MB ($CACHE_BYTES bytes of $COMPRESSION cache blobs)" "$SAME" "$A_ID" "$((FETCHED_MB - BASE_MB))" "$(echo "$T1 - $T0" | bc)" > "$BENCH_DIR/results/build-cache.md" <<'PY'
import json, sys
res, machine, load0, load1, runs, cache_mb, same, image, fetched, export_s = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(res))["results"]}
cold = r["cold build (fresh root)"]
hit = r["cache import from the registry (fresh root)"]
print("## Build cache import (`--cache-from type=registry`) vs a cold build")
print()
print(f"bench/build.sh's workload (3 stages, ~130 MB context, Debian minbase base). Machine A builds cold with `--cache-to type=registry,ref=…,mode=max` to Debian's docker-registry on loopback ({export_s.strip()} s, {cache_mb} MB in the registry); each timed run starts from a fresh root holding only the base image. {runs} runs each (hyperfine), medians. Machine: {machine}.")
print()
print("| build in a fresh root | median | min | max |")
print("|---|---|---|---|")
for name, x in (("cold (every step runs)", cold), ("`--cache-from` the registry (no step runs)", hit)):
    print(f"| {name} | {x['median']:.2f} s | {x['min']:.2f} s | {x['max']:.2f} s |")
print()
goal = "met" if hit["median"] <= 2.0 else "NOT met"
print(f"Cache import / cold: {hit['median'] / cold['median']:.2f}×. Issue 19's goal, a full cache hit from the registry ≤ 2 s: {goal} ({hit['median']:.2f} s). Layers fetched by the import: {fetched} MB (the final image's layers the fresh root lacks; the build stage's stay in the registry: `COPY --from=build` hits on its input key, the build stage's key). Same image ID as machine A's: {same} ({image[:19]}…).")
print(f"Load average when the run started / ended (other work on the machine): {load0} / {load1}.")
PY
cat "$BENCH_DIR/results/build-cache.md"
bash "$BENCH_DIR/collect.sh"

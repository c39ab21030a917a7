#!/usr/bin/env bash
# kiln build against docker's classic builder and buildah bud --layers, in
# one run: a multi-stage Dockerfile with RUN steps on a Debian minbase base
# and a ~130 MB / 4,000-file context. Cold build, no-op rebuild, and a
# rebuild after changing one source file; peak memory of one cold build.
# Writes bench/results/build.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
bench_setup
command -v buildah >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah >/dev/null
containers_conf
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/build
RUNS=${RUNS:-5}
COLD_RUNS=${COLD_RUNS:-3}
# Each tool's series starts after a sync and a pause: ext4 skips inodes
# deleted in the last ~30 s when it allocates, so one tool's deletions
# (docker's intermediate containers, a fresh kiln root) would otherwise
# slow the next tool's file creation.
SETTLE=${SETTLE:-35}
HF=(hyperfine --style basic --warmup 1 --setup "sync; sleep $SETTLE")
K=$W/kiln-root
CTX=$W/ctx
mkdir -p "$W"

build_workload "$CTX"
echo ".complete" > "$CTX/.dockerignore"
CTX_MB=$(du -sm "$CTX/src" | cut -f1)
CTX_FILES=$(find "$CTX/src" -type f | wc -l)

# The base in each tool's store.
$KILN --root "$W/base-root" import "$ROOTFS" kiln-bench/deb:1 >/dev/null 2>&1 || true
rm -rf "$W/base-root"; $KILN --root "$W/base-root" import "$ROOTFS" kiln-bench/deb:1 >/dev/null
$KILN --root "$W/base-root" save -o "$W/base.tar" kiln-bench/deb:1
docker image inspect kiln-bench/deb:1 >/dev/null 2>&1 || docker load -i "$W/base.tar" >/dev/null
buildah inspect kiln-bench/deb:1 >/dev/null 2>&1 || buildah pull -q "docker-archive:$W/base.tar" >/dev/null
buildah tag "$(buildah images -q --filter reference=kiln-bench/deb:1 | head -1)" localhost/kiln-bench/deb:1 >/dev/null 2>&1 || true

KILN_FRESH="rm -rf $K && cp -a $W/base-root $K && sync"
CHANGE="date +%s%N > $CTX/src/d000/changed.c; sync"
KB="$KILN --root $K build -q -t kiln-bench/app:1 $CTX"
DB="docker build -q -t kiln-bench/app:1 $CTX"
BB="buildah bud --layers -q -t kiln-bench/app:1 $CTX"
export DOCKER_BUILDKIT=0

# Cold: every step runs (--no-cache), with the base image already unpacked
# in each tool's storage, as it is for docker and buildah.
eval "$KILN_FRESH"; $KB >/dev/null
"${HF[@]}" --runs "$COLD_RUNS" --export-json "$W/cold.json" \
  -n "kiln build --no-cache" --prepare "sync" "$KILN --root $K build --no-cache -q -t kiln-bench/app:1 $CTX" \
  -n "docker build --no-cache" --prepare "sync" "docker build --no-cache -q -t kiln-bench/app:1 $CTX" \
  -n "buildah bud --layers --no-cache" --prepare "sync" "buildah bud --layers --no-cache -q -t kiln-bench/app:1 $CTX"
# And kiln from a store holding only the base image (it unpacks it too).
"${HF[@]}" --runs "$COLD_RUNS" --export-json "$W/fresh.json" \
  -n "kiln build (fresh store)" --prepare "$KILN_FRESH" "$KB"

# Warm caches for all three, then no-op rebuilds.
$KB >/dev/null; $DB >/dev/null; $BB >/dev/null
"${HF[@]}" --runs "$RUNS" --export-json "$W/noop.json" \
  -n "kiln build (no-op)" "$KB" \
  -n "docker build (no-op)" "$DB" \
  -n "buildah bud (no-op)" "$BB"

# One source file changed before every run.
"${HF[@]}" --runs "$RUNS" --export-json "$W/onefile.json" \
  -n "kiln build (one file changed)" --prepare "$CHANGE" "$KB" \
  -n "docker build (one file changed)" --prepare "$CHANGE" "$DB" \
  -n "buildah bud (one file changed)" --prepare "$CHANGE" "$BB"

# Peak memory of one cold build (max RSS of the largest process; docker's
# work happens in dockerd, so its client's figure is not comparable).
eval "$KILN_FRESH"
KMEM=$( { /usr/bin/time -f %M $KB >/dev/null; } 2>&1 | tail -1)
BMEM=$( { /usr/bin/time -f %M buildah bud --layers --no-cache -q -t kiln-bench/app:1 "$CTX" >/dev/null; } 2>&1 | tail -1)

python3 - "$W" "$CTX_MB" "$CTX_FILES" "$KMEM" "$BMEM" "$(machine)" "$(docker info --format '{{.ServerVersion}}')" "$(buildah --version | awk '{print $3}')" "$RUNS" "$COLD_RUNS" > "$BENCH_DIR/results/build.md" <<'PY'
import json, sys
w, mb, files, kmem, bmem, machine, dver, bver, runs, cold_runs = sys.argv[1:]
def med(name):
    return [r["median"] for r in json.load(open(f"{w}/{name}.json"))["results"]]
rows = []
for label, name, goal in [("cold build", "cold", 0.3), ("no-op rebuild", "noop", None), ("one file changed", "onefile", 0.3)]:
    k, d, b = med(name)
    faster = min(d, b)
    ratio = k / faster
    if goal is None:
        met = "yes" if k <= 0.100 else "NO"
        goal_s = "≤ 100 ms"
    else:
        met = "yes" if ratio <= goal else "NO"
        goal_s = f"≤ {goal}× faster peer"
    rows.append(f"| {label} | {k:.3f} s | {d:.3f} s | {b:.3f} s | {ratio:.2f}× | {goal_s} | {met} |")
print("## Build: kiln vs docker (classic builder) and buildah")
print()
print(f"Workload: a 3-stage Dockerfile (two RUN-only/COPY stages built in parallel, a final stage copying from both and the context, 4 RUN steps) on a Debian bookworm minbase base; context {mb} MB in {files} files. Medians of {cold_runs} cold and {runs} warm runs (hyperfine, 1 warm-up).")
print(f"Machine: {machine}. docker {dver} (DOCKER_BUILDKIT=0, overlay2), buildah {bver} (overlay, runc). kiln: overlay snapshotter, built-in libcontainer runtime.")
print("Cold: every step runs (--no-cache), the base image already unpacked in each tool's storage. Each tool's series starts after `sync` and a 35 s pause (ext4 avoids recently deleted inodes when allocating, so one tool's deletions would slow the next one's file creation).")
print()
print("| build | kiln | docker | buildah | kiln / faster peer | goal | met |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print()
fresh = json.load(open(f"{w}/fresh.json"))["results"][0]["median"]
print(f"kiln from a store holding only the base image (unpacking its 200 MB too): {fresh:.3f} s.")
print()
print(f"Peak memory of one cold build (max RSS of the largest process): kiln {int(kmem)/1024:.0f} MB, buildah {int(bmem)/1024:.0f} MB; docker's build runs inside dockerd, so its client's RSS says nothing.")
PY
cat "$BENCH_DIR/results/build.md"
bash "$BENCH_DIR/collect.sh"

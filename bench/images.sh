#!/usr/bin/env bash
# Image management: kiln import / save / load against docker import / save /
# load, on a debootstrap Debian minbase rootfs, in one run with hyperfine.
# Writes bench/results/images.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
bench_setup
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/images
rm -rf "$W" && mkdir -p "$W"
K=$W/kiln-root
RUNS=${RUNS:-5}
HF=(hyperfine --style basic --runs "$RUNS" --warmup 1)

# Removes the image and every dangling image docker kept from earlier runs:
# they share its layer, and a layer docker still has is not loaded again.
DOCKER_CLEAN="docker rmi -f kiln-bench/deb:1 >/dev/null 2>&1; docker image prune -f >/dev/null; sync"
eval "$DOCKER_CLEAN"

# import: a fresh store / no image before each run.
"${HF[@]}" --export-json "$W/import.json" \
  -n "kiln import" --prepare "rm -rf $K; sync" "$KILN --root $K import $ROOTFS kiln-bench/deb:1" \
  -n "docker import" --prepare "$DOCKER_CLEAN" "docker import $ROOTFS kiln-bench/deb:1"
# Compressed variants, for the record (not docker-equivalent work: docker
# does not compress on import).
"${HF[@]}" --export-json "$W/import-compressed.json" \
  -n "kiln import --compression zstd" --prepare "rm -rf $K; sync" "$KILN --root $K import --compression zstd $ROOTFS kiln-bench/deb:1" \
  -n "kiln import --compression gzip" --prepare "rm -rf $K; sync" "$KILN --root $K import --compression gzip $ROOTFS kiln-bench/deb:1"

# save: both stores hold the image.
rm -rf "$K" && $KILN --root "$K" import "$ROOTFS" kiln-bench/deb:1 >/dev/null
docker image inspect kiln-bench/deb:1 >/dev/null
"${HF[@]}" --export-json "$W/save.json" \
  -n "kiln save" --prepare "rm -f $W/k.tar; sync" "$KILN --root $K save -o $W/k.tar kiln-bench/deb:1" \
  -n "docker save" --prepare "rm -f $W/d.tar; sync" "docker save -o $W/d.tar kiln-bench/deb:1"

# load: the same archive (docker's own) into an empty store / no image.
docker save -o "$W/docker.tar" kiln-bench/deb:1
eval "$DOCKER_CLEAN"
"${HF[@]}" --export-json "$W/load.json" \
  -n "kiln load" --prepare "rm -rf $K; sync" "$KILN --root $K load -i $W/docker.tar" \
  -n "docker load" --prepare "$DOCKER_CLEAN" "docker load -i $W/docker.tar"
eval "$DOCKER_CLEAN"

row() { # name json goal
  read -r k d < <(medians "$2")
  python3 - "$1" "$k" "$d" "$3" <<'PY'
import sys
name, k, d, goal = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
r = k / d
print(f"| {name} | {k:.3f} s | {d:.3f} s | {r:.2f}× | ≤ {goal}× | {'yes' if r <= goal else 'NO'} |")
PY
}
read -r zstd gzip < <(medians "$W/import-compressed.json")
size=$(stat -c %s "$ROOTFS")
{
  echo "## Image management: kiln vs docker"
  echo
  echo "Workload: Debian bookworm minbase rootfs, $((size / 1000000)) MB tar. Medians of $RUNS runs (hyperfine, 1 warm-up)."
  echo "Machine: $(machine). docker $(docker info --format '{{.ServerVersion}}') (overlay2)."
  echo
  echo "| operation | kiln | docker | ratio | goal | met |"
  echo "|---|---|---|---|---|---|"
  row "import (rootfs tar → image)" "$W/import.json" 0.5
  row "save (image → archive)" "$W/save.json" 0.5
  row "load (docker's archive → image)" "$W/load.json" 0.5
  echo
  echo "kiln stores imported layers uncompressed by default, as docker's local store does (compression happens on push)."
  echo "With a compressed layer instead: \`--compression zstd\` ${zstd} s, \`--compression gzip\` ${gzip} s (gzip level 6, zlib-rs, block-parallel on all cores)."
} > "$BENCH_DIR/results/images.md"

bash "$BENCH_DIR/collect.sh"
cat "$BENCH_DIR/results/images.md"

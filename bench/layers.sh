#!/usr/bin/env bash
# Layer engine: create a gzip/zstd layer from a directory tree and apply
# it to an empty directory, against tar | gzip, tar | pigz, tar x and
# umoci unpack, on two workloads, in one run with hyperfine. Outputs and
# extraction targets are on tmpfs, so the numbers measure the engines, not
# this machine's disk. Writes bench/results/layers.md.
source "$(dirname "$0")/common.sh"
bench_setup
command -v pigz >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pigz >/dev/null
DEB_TAR=$(debian_rootfs_tar)
RUNS=${RUNS:-5}
HF=(hyperfine --style basic --runs "$RUNS" --warmup 1)
SHM=$(mktemp -d /dev/shm/kiln-bench.XXXX)
trap 'rm -rf "$SHM"' EXIT

# Workload A: 4,000 files, ~135 MB, half text-like, half incompressible.
TREE_A=$CACHE/tree-4000
if [ ! -f "$TREE_A/.done" ]; then
  rm -rf "$TREE_A"
  python3 - "$TREE_A" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
for i in range(4000):
    d = os.path.join(root, f"dir{i % 40:02d}", f"sub{i % 7}")
    os.makedirs(d, exist_ok=True)
    size = 33_750 if i % 2 else 33_750
    if i % 2:
        data = rng.randbytes(size)
    else:
        data = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
    with open(os.path.join(d, f"file{i}.dat"), "wb") as f:
        f.write(data)
open(os.path.join(root, ".done"), "w").close()
PY
fi
# Workload B: the Debian minbase rootfs as a directory.
TREE_B=$CACHE/debian-minbase

row() { # label json goal: kiln is the first command, the peer the second
  python3 - "$@" <<'PY'
import json, sys
label, path, goal = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))["results"]
k, p = r[0]["median"], r[1]["median"]
ratio = k / p
cmd = lambda i: r[i]["command"].replace("|", "\\|")
print(f"| {label} | {cmd(0)} | {k:.3f} s | {cmd(1)} | {p:.3f} s | {ratio:.2f}× | ≤ {goal}× | {'yes' if ratio <= goal else 'NO'} |")
PY
}

rows=()
for w in A B; do
  tree=TREE_$w; tree=${!tree}
  size=$(du -sm --exclude=.done "$tree" | cut -f1)
  files=$(find "$tree" -type f | wc -l)
  label="$w ($files files, ${size} MB)"
  J=$SHM/$w
  mkdir -p "$J"
  "${HF[@]}" --export-json "$J/gzip-vs-gzip.json" \
    -n "kiln layer create (gzip)" "$KILN layer create $tree -o $SHM/k.tgz --compression gzip" \
    -n "tar c | gzip -6" "tar -C $tree -cf - . | gzip -6 > $SHM/t.tgz"
  "${HF[@]}" --export-json "$J/gzip-vs-pigz.json" \
    -n "kiln layer create (gzip)" "$KILN layer create $tree -o $SHM/k.tgz --compression gzip" \
    -n "tar c | pigz -6" "tar -C $tree -cf - . | pigz -6 > $SHM/p.tgz"
  "${HF[@]}" --export-json "$J/zstd-vs-gzip.json" \
    -n "kiln layer create (zstd)" "$KILN layer create $tree -o $SHM/k.tzst --compression zstd" \
    -n "kiln layer create (gzip)" "$KILN layer create $tree -o $SHM/k.tgz --compression gzip"
  $KILN layer create "$tree" -o "$SHM/k.tar" --compression none >/dev/null
  $KILN layer create "$tree" -o "$SHM/k.tgz" --compression gzip >/dev/null
  "${HF[@]}" --export-json "$J/apply-plain.json" \
    -n "kiln layer apply (plain)" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "$KILN layer apply $SHM/k.tar $SHM/x" \
    -n "tar x" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "tar -C $SHM/x -xf $SHM/k.tar"
  "${HF[@]}" --export-json "$J/apply-gzip.json" \
    -n "kiln layer apply (gzip)" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "$KILN layer apply $SHM/k.tgz $SHM/x" \
    -n "tar xzf" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "tar -C $SHM/x -xzf $SHM/k.tgz"
  # umoci unpacks an OCI image: the same gzip layer, imported into a store.
  rm -rf "$SHM/store"
  $KILN --root "$SHM/store" import --compression gzip "$SHM/k.tar" bench/layer:1 >/dev/null
  "${HF[@]}" --export-json "$J/apply-umoci.json" \
    -n "kiln layer apply (gzip)" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "$KILN layer apply $SHM/k.tgz $SHM/x" \
    -n "umoci unpack" --prepare "rm -rf $SHM/bundle" "umoci unpack --image $SHM/store:docker.io/bench/layer:1 $SHM/bundle"
  # The same plain layer as a store blob: verified when it came in, so
  # `layer apply sha256:…` hashes nothing (as an image unpack does not).
  rm -rf "$SHM/plain-store"
  $KILN --root "$SHM/plain-store" import --compression none "$SHM/k.tar" bench/plain:1 >/dev/null
  BLOB=$($KILN --root "$SHM/plain-store" inspect -f '{{index .RootFS.Layers 0}}' bench/plain:1)
  BLOB_FILE=$SHM/plain-store/blobs/sha256/${BLOB#sha256:}
  "${HF[@]}" --export-json "$J/apply-blob.json" \
    -n "kiln layer apply (store blob)" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "$KILN --root $SHM/plain-store layer apply $BLOB $SHM/x" \
    -n "tar x" --prepare "rm -rf $SHM/x; mkdir $SHM/x" "tar -C $SHM/x -xf $BLOB_FILE"
  rows+=("$(row "apply, $label" "$J/apply-blob.json" 1.0)")
  rows+=("$(row "create, $label" "$J/gzip-vs-gzip.json" 0.5)")
  rows+=("$(row "create, $label" "$J/gzip-vs-pigz.json" 1.0)")
  rows+=("$(row "create, $label" "$J/zstd-vs-gzip.json" 0.25)")
  rows+=("$(row "apply, $label" "$J/apply-plain.json" 1.0)")
  rows+=("$(row "apply, $label" "$J/apply-gzip.json" 1.0)")
  rows+=("$(row "apply, $label" "$J/apply-umoci.json" 1.0)")
  gz=$(stat -c %s "$SHM/k.tgz"); tgz=$(stat -c %s "$SHM/t.tgz"); zs=$(stat -c %s "$SHM/k.tzst")
  sizes+=("| $label | $((gz / 1000000)) MB | $((tgz / 1000000)) MB | $((zs / 1000000)) MB |")
done

{
  echo "## Layer engine: kiln vs tar, gzip, pigz, umoci"
  echo
  echo "Medians of $RUNS runs (hyperfine, 1 warm-up); inputs in page cache, outputs and extraction on tmpfs."
  echo "Machine: $(machine). Goals: gzip creation ≥ 2× faster than \`tar c | gzip -6\` (≤ 0.5×); zstd ≥ 4× faster than gzip (≤ 0.25×); apply at least as fast as the peer (≤ 1×)."
  echo
  echo "| operation | kiln | time | peer | time | ratio | goal | met |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "| layer sizes | kiln gzip | gzip -6 | kiln zstd |"
  echo "|---|---|---|---|"
  printf '%s\n' "${sizes[@]}"
  echo
  echo "kiln's apply of a file also hashes the whole stream (the diff_id, checked against the image config); of a store blob (\`layer apply sha256:…\`, an uncompressed blob the store verified on the way in) it does not. It always resolves every path with openat2(RESOLVE_IN_ROOT); tar does not."
} > "$BENCH_DIR/results/layers.md"
bash "$BENCH_DIR/collect.sh"
cat "$BENCH_DIR/results/layers.md"

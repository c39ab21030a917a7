#!/usr/bin/env bash
# Two kiln binaries on bench/build.sh's workload, in one run: "did this
# change make builds slower?" (cold --no-cache, no-op, one file changed;
# medians; each series after `sync` and a pause, as in build.sh).
# Usage: bash bench/build-ab.sh OLD_KILN NEW_KILN   (release binaries; a
# kiln copied elsewhere takes its kiln-monitor along, though builds run
# no container monitor)
# Writes bench/results/build-ab.md.
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: build-ab.sh OLD_KILN NEW_KILN}
NEW=${2:?usage: build-ab.sh OLD_KILN NEW_KILN}
command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/build-ab
CTX=$CACHE/build/ctx
RUNS=${RUNS:-5}
COLD_RUNS=${COLD_RUNS:-3}
SETTLE=${SETTLE:-35}
HF=(hyperfine --style basic --warmup 1 --setup "sync; sleep $SETTLE")
mkdir -p "$W"
build_workload "$CTX"
echo ".complete" > "$CTX/.dockerignore"
for v in old new; do
  bin=$OLD; [ "$v" = new ] && bin=$NEW
  rm -rf "$W/$v"
  "$bin" --root "$W/$v" import "$ROOTFS" kiln-bench/deb:1 >/dev/null
  "$bin" --root "$W/$v" build -q -t kiln-bench/app:1 "$CTX" >/dev/null
done
KB() { echo "$1 --root $W/$2 build -q -t kiln-bench/app:1 ${3:-} $CTX"; }
CHANGE="date +%s%N > $CTX/src/d000/changed.c; sync"
"${HF[@]}" --runs "$COLD_RUNS" --export-json "$W/cold.json" \
  -n old "$(KB "$OLD" old --no-cache)" -n new "$(KB "$NEW" new --no-cache)"
"${HF[@]}" --runs "$RUNS" --export-json "$W/noop.json" \
  -n old "$(KB "$OLD" old)" -n new "$(KB "$NEW" new)"
"${HF[@]}" --runs "$RUNS" --export-json "$W/onefile.json" \
  -n old --prepare "$CHANGE" "$(KB "$OLD" old)" -n new --prepare "$CHANGE" "$(KB "$NEW" new)"
python3 - "$W" "$(machine)" "$OLD" "$NEW" > "$BENCH_DIR/results/build-ab.md" <<'PY'
import json, sys
w, machine, old, new = sys.argv[1:]
print("## Build A/B: two kiln binaries on the build workload")
print()
print(f"old: `{old}`, new: `{new}`. Machine: {machine}. Medians; each series after `sync` and a pause.")
print()
print("| build | old | new | new / old |")
print("|---|---|---|---|")
for label, name in [("cold (--no-cache)", "cold"), ("no-op rebuild", "noop"), ("one file changed", "onefile")]:
    o, n = [r["median"] for r in json.load(open(f"{w}/{name}.json"))["results"]]
    print(f"| {label} | {o:.3f} s | {n:.3f} s | {n / o:.2f}× |")
PY
cat "$BENCH_DIR/results/build-ab.md"

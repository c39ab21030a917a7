#!/usr/bin/env bash
# Cold (--no-cache) builds of two kiln binaries, interleaved old, new,
# old, new… so that a busy machine's load falls on both alike (hyperfine
# runs each series in one block). Reports medians of wall, system and user
# time; system time is what a delete or copy regression shows in.
# Usage: bash bench/build-ab-cold.sh OLD_KILN NEW_KILN   (release binaries)
# Writes bench/results/build-ab-cold.md.
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: build-ab-cold.sh OLD_KILN NEW_KILN}
NEW=${2:?usage: build-ab-cold.sh OLD_KILN NEW_KILN}
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/build-ab-cold
CTX=$CACHE/build/ctx
ROUNDS=${ROUNDS:-8}
SETTLE=${SETTLE:-6}
build_workload "$CTX"
echo ".complete" > "$CTX/.dockerignore"
rm -rf "$W"
mkdir -p "$W"
for v in old new; do
  bin=$OLD; [ "$v" = new ] && bin=$NEW
  "$bin" --root "$W/$v" import "$ROOTFS" kiln-bench/deb:1 >/dev/null
  "$bin" --root "$W/$v" build -q -t kiln-bench/app:1 "$CTX" >/dev/null
done
: > "$W/times"
for _ in $(seq 1 "$ROUNDS"); do
  for v in old new; do
    bin=$OLD; [ "$v" = new ] && bin=$NEW
    sync; sleep "$SETTLE"
    /usr/bin/time -f "$v %e %S %U" -a -o "$W/times" \
      "$bin" --root "$W/$v" build -q --no-cache -t kiln-bench/app:1 "$CTX" >/dev/null
  done
done
python3 - "$W/times" "$(machine)" "$OLD" "$NEW" "$(cut -d' ' -f1 /proc/loadavg)" \
  > "$BENCH_DIR/results/build-ab-cold.md" <<'PY'
import statistics as st, sys
times, machine, old, new, load = sys.argv[1:]
rows = [l.split() for l in open(times) if l.startswith(("old", "new"))]
med = lambda v, i: st.median(float(r[i]) for r in rows if r[0] == v)
print("## Cold builds, two kiln binaries interleaved")
print()
print(f"old: `{old}`, new: `{new}`. Machine: {machine}; load average at the end {load}.")
print(f"{len(rows) // 2} rounds of old then new; medians.")
print()
print("| | wall | system | user |")
print("|---|---|---|---|")
for v in ("old", "new"):
    print(f"| {v} | {med(v, 1):.2f} s | {med(v, 2):.2f} s | {med(v, 3):.2f} s |")
print(f"| new / old | {med('new', 1) / med('old', 1):.2f}× | {med('new', 2) / med('old', 2):.2f}× | {med('new', 3) / med('old', 3):.2f}× |")
PY
rm -rf "$W/old" "$W/new"
cat "$BENCH_DIR/results/build-ab-cold.md"

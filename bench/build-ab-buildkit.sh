#!/usr/bin/env bash
# Two kiln binaries and BuildKit on bench/build.sh's workloads, interleaved
# (old, new, BuildKit; then new, old, BuildKit; …) so that a shared machine's
# load falls on all three alike; hyperfine would run each series in one
# block. For a busy machine: ratios are what to read, and the load is in
# the output. bench/build.sh on a quiet machine gives the table of record.
# Workloads: cold (--no-cache) and one file changed of the multi-stage
# build, and the RUN-heavy apt one (cold).
# Usage: bash bench/build-ab-buildkit.sh OLD_KILN NEW_KILN   (release binaries)
# Writes bench/results/build-ab-buildkit.md.
source "$(dirname "$0")/common.sh"
OLD=${1:?usage: build-ab-buildkit.sh OLD_KILN NEW_KILN}
NEW=${2:?usage: build-ab-buildkit.sh OLD_KILN NEW_KILN}
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/build-ab-buildkit
CTX=$CACHE/build/ctx
APT=$CACHE/build/apt
ROUNDS=${ROUNDS:-5}
SETTLE=${SETTLE:-5}
WORKLOADS=${WORKLOADS:-cold onefile apt}
build_workload "$CTX"
echo ".complete" > "$CTX/.dockerignore"
mkdir -p "$APT"
cat > "$APT/Dockerfile" <<'DOCKERFILE'
FROM kiln-bench/deb:1
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null && rm -rf /var/lib/apt/lists/*
CMD ["python3", "--version"]
DOCKERFILE
rm -rf "$W"
mkdir -p "$W"
# The stores grow by ~2 GB a round (a cold build's snapshots and blobs):
# they are pruned between rounds and removed at exit (the disk filled
# once). BuildKit's build cache is dockerd's, shared with whoever else
# uses it on the machine: left alone.
cleanup() {
  rm -rf "$W/old" "$W/new" "$W/base.tar"
}
trap cleanup EXIT
for v in old new; do
  bin=$OLD; [ "$v" = new ] && bin=$NEW
  "$bin" --root "$W/$v" import "$ROOTFS" kiln-bench/deb:1 >/dev/null
  "$bin" --root "$W/$v" build -q -t kiln-bench/app:1 "$CTX" >/dev/null
done
if ! docker image inspect kiln-bench/deb:1 >/dev/null 2>&1; then
  "$NEW" --root "$W/new" save -o "$W/base.tar" kiln-bench/deb:1
  docker load -i "$W/base.tar" >/dev/null
fi
BK=(env DOCKER_BUILDKIT=1 /usr/bin/docker build -q)
"${BK[@]}" -t kiln-bench/app:1 "$CTX" >/dev/null
CHANGE() { date +%s%N > "$CTX/src/d000/changed.c"; }

# One timed run: label, then the command.
timed() {
  local label=$1
  shift
  sync
  sleep "$SETTLE"
  /usr/bin/time -f "$label %e %S %U" -a -o "$W/times" "$@" >/dev/null
}

: > "$W/times"
: > "$W/load"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which kiln goes first: a run's background work (its
  # snapshot trash emptier, blob writeback) lands on the run after it.
  order="old new bk"
  [ $((round % 2)) = 0 ] && order="new old bk"
  for wl in $WORKLOADS; do
    for v in $order; do
      bin=$OLD; [ "$v" = new ] && bin=$NEW
      case $wl in
        cold)
          if [ "$v" = bk ]; then timed "$wl-$v" "${BK[@]}" --no-cache -t kiln-bench/app:1 "$CTX"
          else timed "$wl-$v" "$bin" --root "$W/$v" build -q --no-cache -t kiln-bench/app:1 "$CTX"; fi ;;
        onefile)
          CHANGE
          if [ "$v" = bk ]; then timed "$wl-$v" "${BK[@]}" -t kiln-bench/app:1 "$CTX"
          else timed "$wl-$v" "$bin" --root "$W/$v" build -q -t kiln-bench/app:1 "$CTX"; fi ;;
        apt)
          if [ "$v" = bk ]; then timed "$wl-$v" "${BK[@]}" --no-cache -t kiln-bench/apt:1 "$APT"
          else timed "$wl-$v" "$bin" --root "$W/$v" build -q --no-cache -t kiln-bench/apt:1 "$APT"; fi ;;
      esac
    done
  done
  cut -d' ' -f1 /proc/loadavg >> "$W/load"
  # What the next round's builds do not need: dangling images (the
  # previous apt image) and the snapshots and blobs no image or cache
  # record keeps (the previous cold build's); the cache stays, so one
  # file changed still hits for the rest. (`builder prune` would drop
  # the records of stages no image contains.)
  for v in old new; do
    bin=$OLD; [ "$v" = new ] && bin=$NEW
    "$bin" --root "$W/$v" image prune -f >/dev/null
  done
done
python3 - "$W" "$(machine)" "$OLD" "$NEW" "$WORKLOADS" \
  > "$BENCH_DIR/results/build-ab-buildkit.md" <<'PY'
import statistics as st, sys
w, machine, old, new, workloads = sys.argv[1:]
rows = [l.split() for l in open(f"{w}/times") if l.strip() and not l.startswith("Command")]
loads = [float(l) for l in open(f"{w}/load") if l.strip()]
def med(label, i):
    v = [float(r[i]) for r in rows if r[0] == label]
    return st.median(v) if v else float("nan")
names = {"cold": "cold (--no-cache)", "onefile": "one file changed", "apt": "RUN-heavy apt (--no-cache)"}
print("## Build: two kiln binaries and BuildKit, interleaved")
print()
print(f"old: `{old}`, new: `{new}`, BuildKit: `DOCKER_BUILDKIT=1 /usr/bin/docker build`. Machine: {machine}.")
print(f"{len(loads)} rounds of old, new, BuildKit per workload (the two kilns' order alternating), each run after `sync` and a pause; medians. Load average (1 min) after each round: {', '.join(f'{l:.1f}' for l in loads)} — a shared machine, so read the ratios. System and user time are the client process tree's (BuildKit's work is in dockerd: not counted).")
print()
print("| workload | old | new | BuildKit | new / old | new / BuildKit | system old → new |")
print("|---|---|---|---|---|---|---|")
for wl in workloads.split():
    o, n, b = med(f"{wl}-old", 1), med(f"{wl}-new", 1), med(f"{wl}-bk", 1)
    so, sn = med(f"{wl}-old", 2), med(f"{wl}-new", 2)
    print(f"| {names[wl]} | {o:.2f} s | {n:.2f} s | {b:.2f} s | {n / o:.2f}× | {n / b:.2f}× | {so:.2f} → {sn:.2f} s |")
PY
cat "$BENCH_DIR/results/build-ab-buildkit.md"

#!/usr/bin/env bash
# Two-platform builds (linux/amd64 native, linux/arm64 through the same
# QEMU binfmt handler): kiln build --platform against buildah build
# --platform ... --manifest (Debian's buildah), in one run, for two
# Dockerfiles: "loop", RUN-heavy steps in one stage (an emulated shell
# loop, then one exec per file), and "cross", the cross-compile pattern (a
# FROM --platform=$BUILDPLATFORM stage doing native work, part of it per
# target, whose output each platform's final stage copies and installs
# with an exec-heavy RUN). Each also gets its floor: the RUN commands of
# the arm64 image's chain run directly in a chroot of the base (no
# container, no build tool), one after another; with the platforms built
# side by side no build of it can be quicker.
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

# The builds' own store, so the base is pulled as a user would.
K="$KILN --root $W/kiln-build-root"
RM="$BUILDAH manifest rm kiln-bench/mp:1 >/dev/null 2>&1 || true"
KB() { echo "$K build -q --no-cache --platform linux/amd64,linux/arm64 -t kiln-bench/mp:1 $W/$1"; }
BB() { echo "$BUILDAH build -q --tls-verify=false --platform linux/amd64,linux/arm64 --manifest kiln-bench/mp:1 $W/$1"; }

# "loop": RUN-heavy steps in the platform's own stage.
mkdir -p "$W/loop"
L1="i=0; s=0; while [ \$i -lt $LOOP ]; do s=\$((s+i%7)); i=\$((i+1)); done; echo \$s > /sum"
L2="busybox mkdir /data && i=0; while [ \$i -lt $FILES ]; do busybox seq 1 500 > /data/f\$i; i=\$((i+1)); done"
printf 'FROM %s\nRUN %s\nRUN %s\n' "$BASE" "$L1" "$L2" > "$W/loop/Dockerfile"

# "cross": what a Go or Rust project's multi-platform Dockerfile does, in
# work busybox can do. The builder stage runs on the build platform: a
# target-independent step (fetching dependencies, generating code; here
# writing $FILES sources), then ARG TARGETARCH and the per-target compile
# (here tar and gzip of the sources into app-$TARGETARCH.tgz), natively
# for each target. The final stage, on the target's base, copies its
# target's artifact and installs it: unpacking, then one exec per file
# (as a package install's scripts and checksums do), emulated for arm64.
mkdir -p "$W/cross"
C1="busybox mkdir -p /src && i=0; while [ \$i -lt $FILES ]; do busybox seq \$i 7 200000 > /src/m\$i.c; i=\$((i+1)); done"
C2="busybox mkdir -p /out && busybox tar -cf - -C /src . | busybox gzip -6 > /out/app-\$TARGETARCH.tgz"
C3="busybox mkdir -p /opt/app && busybox tar -xzf /tmp/app.tgz -C /opt/app && busybox rm /tmp/app.tgz && for f in /opt/app/*.c; do busybox md5sum \$f; done > /opt/app.md5sums"
cat > "$W/cross/Dockerfile" <<DF
FROM --platform=\$BUILDPLATFORM $BASE AS build
RUN $C1
ARG TARGETARCH
RUN $C2
FROM $BASE
ARG TARGETARCH
COPY --from=build /out/app-\$TARGETARCH.tgz /tmp/app.tgz
RUN $C3
DF

# Warm-up: both pull the base, and the results are checked.
for wl in loop cross; do
  $(KB $wl) >/dev/null
  for p in amd64:x86_64 arm64:aarch64; do
    got=$($K run --rm --platform linux/${p%%:*} kiln-bench/mp:1 busybox uname -m)
    [ "$got" = "${p##*:}" ] || { echo "kiln's linux/${p%%:*} image of $wl runs on $got" >&2; exit 1; }
  done
  eval "$RM"; $(BB $wl) >/dev/null
  n=$($BUILDAH manifest inspect kiln-bench/mp:1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["manifests"]))')
  [ "$n" = 2 ] || { echo "buildah's list of $wl has $n images" >&2; exit 1; }
done
# How often each tool runs the builder stage's target-independent step
# (kiln: run once, the other platform's is CACHED; buildah prints each
# step it runs, and keeps no step cache without --layers).
eval "$RM"
BUILDAH_RUNS=$($BUILDAH build --tls-verify=false --platform linux/amd64,linux/arm64 --manifest kiln-bench/mp:1 "$W/cross" 2>&1 | grep -c 'RUN busybox mkdir -p /src' || true)
KILN_SHARED=$($K build --progress plain --no-cache --platform linux/amd64,linux/arm64 -t kiln-bench/mp:1 "$W/cross" 2>&1 | grep -c '^#[0-9]* CACHED$' || true)
# And where each runs it for the arm64 image: a stage that notes its
# machine, copied into the final stage.
mkdir -p "$W/probe"
printf 'FROM --platform=$BUILDPLATFORM %s AS b\nRUN busybox uname -m > /m\nFROM %s\nCOPY --from=b /m /m\n' "$BASE" "$BASE" > "$W/probe/Dockerfile"
$K build -q --platform linux/amd64,linux/arm64 -t kiln-bench/probe:1 "$W/probe" >/dev/null
KILN_PROBE=$($K run --rm --platform linux/arm64 kiln-bench/probe:1 busybox cat /m)
$BUILDAH build -q --tls-verify=false --platform linux/amd64,linux/arm64 --manifest kiln-bench/probe:1 "$W/probe" >/dev/null
d=$($BUILDAH manifest inspect kiln-bench/probe:1 | python3 -c 'import json,sys; print([m["digest"] for m in json.load(sys.stdin)["manifests"] if m["platform"]["architecture"] == "arm64"][0])')
ctr=$($BUILDAH from --pull=never "kiln-bench/probe@$d" | tail -1)
BUILDAH_PROBE=$(cat "$($BUILDAH mount "$ctr")/m")
$BUILDAH rm "$ctr" >/dev/null

# The floors: the arm64 chain's RUN commands in chroots of the bases,
# fresh copies each time.
F=$W/floor
cat > "$W/floor-prepare.sh" <<SH
rm -rf $F && mkdir -p $F && cp -a $W/amd64 $F/amd64 && cp -a $W/arm64 $F/arm64
SH
cat > "$W/floor-loop.sh" <<SH
chroot $F/arm64 /bin/sh -c '$L1' && chroot $F/arm64 /bin/sh -c '$L2'
SH
cat > "$W/floor-cross.sh" <<SH
chroot $F/amd64 /bin/sh -c '$C1' && chroot $F/amd64 /bin/busybox env TARGETARCH=arm64 /bin/sh -c '$C2' &&
cp $F/amd64/out/app-arm64.tgz $F/arm64/tmp/app.tgz && chroot $F/arm64 /bin/sh -c '$C3'
SH

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
sync
for wl in loop cross; do
  hyperfine -r "$RUNS" --export-json "$W/h-$wl.json" --style basic \
    -n "floor" --prepare "bash $W/floor-prepare.sh" "bash $W/floor-$wl.sh" \
    -n "kiln" --prepare true "$(KB $wl)" \
    -n "buildah" --prepare "$RM" "$(BB $wl)" >&2
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
# The sizes of the cross workload's sources and artifact (the last floor's).
SIZES="$(du -sm "$F/amd64/src" | cut -f1) MB of sources, a $(du -m "$F/amd64/out/app-arm64.tgz" | cut -f1) MB artifact"

mkdir -p "$BENCH_DIR/results"
python3 - "$W" "$LOAD" "$LOAD_END" "$RUNS" "$LOOP" "$FILES" "$KILN" "$(buildah --version)" "$BUILDAH_RUNS" "$KILN_SHARED" "$SIZES" "$KILN_PROBE" "$BUILDAH_PROBE" > "$BENCH_DIR/results/multiplatform.md" <<'PY'
import json, statistics, sys
w, load, load_end, runs, loop, files, kiln, buildah, buildah_runs, kiln_shared, sizes, kiln_probe, buildah_probe = sys.argv[1:]
kiln_runs = 2 - int(kiln_shared)
def times(wl):
    r = {x["command"]: x["times"] for x in json.load(open(f"{w}/h-{wl}.json"))["results"]}
    return {k: (statistics.median(v), min(v), max(v)) for k, v in r.items()}
t = {wl: times(wl) for wl in ("loop", "cross")}
print("## Multi-platform build: kiln against buildah (issue 19)")
print()
print(f"Two Dockerfiles on a two-platform busybox base served by the distribution registry on 127.0.0.1, built for linux/amd64 (native) and linux/arm64 (QEMU user emulation through the same binfmt handler for both tools). Every step runs in every timed build (kiln `--no-cache`; buildah without `--layers`); the base is pulled before timing. Medians of {runs} runs (hyperfine), all in one run. kiln binary: `{kiln}`; {buildah}.")
print()
print(f"- **loop**: RUN-heavy steps in the platform's own stage: a shell loop of {loop} iterations, then {files} files written by `busybox seq` (one exec each).")
print(f"- **cross**: the cross-compile pattern, chosen because it is how multi-platform images are usually built (Go, Rust, C): a `FROM --platform=$BUILDPLATFORM` builder stage doing its work natively, a target-independent step (fetching and generating sources: {files} files written by `busybox seq`) then `ARG TARGETARCH` and the per-target compile (tar and gzip of the sources; {sizes}), and the final stage on the target's base copying its target's artifact and installing it (unpacking, then one `md5sum` exec per file, as a package install's scripts do), emulated for arm64. In a `--no-cache` build of both platforms, kiln ran the builder's target-independent step {kiln_runs} time(s) (shared: the other platform's is CACHED, as BuildKit runs it once in its one graph); buildah ran it {buildah_runs} time(s), counted from its step lines (it builds each platform on its own). For the linux/arm64 image, a `$BUILDPLATFORM` stage running `uname -m` ran on {kiln_probe} in kiln and on {buildah_probe} in buildah" + (" (buildah emulates the builder stage for the foreign platform: its native work is done under QEMU, which is most of the gap)" if buildah_probe != kiln_probe else "") + ".")
print()
print("The floor is the arm64 image's chain of RUN commands run directly in chroots of the bases (no container, no build tool), one after another: with the platforms built side by side (the amd64 chain is shorter), no build of the index can be quicker; buildah, building one platform after the other, also does the amd64 chain.")
print()
print("| workload | floor | kiln | buildah | kiln / buildah | floor / buildah | kiln − floor | buildah − floor |")
print("|---|---|---|---|---|---|---|---|")
for wl in ("loop", "cross"):
    f, k, b = (t[wl][n][0] for n in ("floor", "kiln", "buildah"))
    print(f"| {wl} | {f:.2f} s | {k:.2f} s | {b:.2f} s | {k / b:.2f}× | {f / b:.2f}× | {k - f:+.2f} s | {b - f:+.2f} s |")
print()
print("floor / buildah is the best ratio any tool could reach: a workload whose floor is above half of buildah's time cannot meet a 0.5× goal however little the tool adds.")
print()
print("min–max of each: " + "; ".join(f"{wl} {n} {t[wl][n][1]:.2f}–{t[wl][n][2]:.2f} s" for wl in ("loop", "cross") for n in ("floor", "kiln", "buildah")) + ".")
print()
goal = lambda wl: "met" if t[wl]["kiln"][0] / t[wl]["buildah"][0] <= 0.5 else "NOT met"
print("Issue 19's goal (≤ 0.5× buildah): " + ", ".join(f"{wl} {t[wl]['kiln'][0] / t[wl]['buildah'][0]:.2f}× ({goal(wl)})" for wl in ("loop", "cross")) + f". Load average at the start {load}, at the end {load_end} (other work on the machine: the figures are relative, not absolute; under load, kiln's RUN containers are cgroups of their own and are scheduled as such against the floor's plain processes).")
PY
bash "$BENCH_DIR/collect.sh"
cat "$BENCH_DIR/results/multiplatform.md"

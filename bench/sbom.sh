#!/usr/bin/env bash
# kiln sbom vs syft on the same OCI archive: a ~1 GB image built here with
# kiln from the Debian bookworm minbase (common.sh) with python3 and
# python3-requests installed by apt from the mirror, a Node tree of 2000
# packages, 40 copies of a Go binary with a vendored dependency, and
# ~800 MB of other files (random data, copies of the base's ELF
# binaries) over 6 layers; saved with `kiln save`. Both tools write
# SPDX JSON to /dev/null. Times with hyperfine, peak memory with
# /usr/bin/time -v. The data lives under /var/tmp and is deleted at the end.
# Usage: bash bench/sbom.sh   (KILN_BIN=path times another kiln binary)
# Writes bench/results/sbom.md and its section of bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
RUNS=${RUNS:-5}
if [ -n "${KILN_BIN:-}" ]; then KILN=$KILN_BIN; else
  (cd "$REPO" && cargo build --release --locked -q -p kiln)
  KILN=${CARGO_TARGET_DIR:-$REPO/target}/release/kiln
fi
command -v syft >/dev/null || { echo "syft missing: run scripts/setup.sh" >&2; exit 1; }
command -v go >/dev/null || { echo "go missing: run scripts/setup.sh" >&2; exit 1; }
W=$(mktemp -d /var/tmp/kiln-bench-sbom.XXXXXX)
trap 'rm -rf "$W"' EXIT
BASE=$(debian_rootfs_tar)
"$KILN" --root "$W/root" import "$BASE" bench/debian:12 >/dev/null

# A Go binary with a vendored dependency (no module proxy needed).
mkdir -p "$W/go/vendor/example.com/greet" "$W/ctx/node"
cat > "$W/go/go.mod" <<'GO'
module example.com/hello

go 1.19

require example.com/greet v1.2.3
GO
printf 'package main\n\nimport "example.com/greet"\n\nfunc main() { println(greet.Hello()) }\n' > "$W/go/main.go"
printf 'package greet\n\nfunc Hello() string { return "hello" }\n' > "$W/go/vendor/example.com/greet/greet.go"
printf '# example.com/greet v1.2.3\n## explicit\nexample.com/greet\n' > "$W/go/vendor/modules.txt"
(cd "$W/go" && GOCACHE="$W/gocache" GOPROXY=off CGO_ENABLED=0 go build -mod=vendor -o "$W/ctx/hello" .)
for i in $(seq 1 2000); do
  mkdir -p "$W/ctx/node/node_modules/pkg$i"
  printf '{"name":"pkg%d","version":"1.0.%d","license":"MIT"}\n' "$i" "$i" > "$W/ctx/node/node_modules/pkg$i/package.json"
  printf 'module.exports = %d;\n' "$i" > "$W/ctx/node/node_modules/pkg$i/index.js"
done
cat > "$W/ctx/Dockerfile" <<'DF'
FROM bench/debian:12
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-requests && rm -rf /var/lib/apt/lists/*
COPY node /srv/app
COPY hello /opt/go/hello
RUN i=0; while [ $i -lt 40 ]; do cp /opt/go/hello /opt/go/hello$i; i=$((i+1)); done
RUN mkdir /data && i=0; while [ $i -lt 30 ]; do head -c 10000000 /dev/urandom > /data/blob$i; i=$((i+1)); done
RUN mkdir /copies && i=0; while [ $i -lt 8 ]; do mkdir /copies/$i && cp -a /usr/bin /usr/lib/x86_64-linux-gnu /copies/$i/; i=$((i+1)); done
DF
"$KILN" --root "$W/root" build -q --analyze=off -t bench/sbom:1 "$W/ctx" >/dev/null
TAR=$W/image.tar
"$KILN" --root "$W/root" save -o "$TAR" bench/sbom:1
SIZE=$(du -b "$TAR" | cut -f1)

# Same packages first (the comparison is only fair if both did the work).
syft "oci-archive:$TAR" -o json -q > "$W/syft.json"
"$KILN" --root "$W/root" sbom -o json "oci-archive:$TAR" > "$W/kiln.json"
python3 - "$W/syft.json" "$W/kiln.json" <<'PY'
import json, sys
types = {"deb", "apk", "rpm", "python", "npm", "go-module", "rust-crate"}
s = {(a["type"], a["name"], a["version"]) for a in json.load(open(sys.argv[1]))["artifacts"] if a["type"] in types}
k = {(p["type"], p["name"], p["version"]) for p in json.load(open(sys.argv[2]))["packages"]}
assert s == k, (sorted(s - k)[:20], sorted(k - s)[:20])
print(f"same packages: {len(k)} (type, name, version)")
PY

cd "$W"
hyperfine -N -w 1 -r "$RUNS" --export-json "$W/times.json" \
  -n kiln "$KILN --root $W/root sbom -o spdx-json --output-file /dev/null oci-archive:$TAR" \
  -n syft "syft oci-archive:$TAR -q -o spdx-json=/dev/null" >/dev/null 2>&1
rss() { { /usr/bin/time -v "$@" 2>&1 >/dev/null || true; } | awk -F': ' '/Maximum resident/ {print $2}'; }
KILN_RSS=$(rss "$KILN" --root "$W/root" sbom -o spdx-json --output-file /dev/null "oci-archive:$TAR")
SYFT_RSS=$(rss syft "oci-archive:$TAR" -q -o spdx-json=/dev/null)

mkdir -p "$BENCH_DIR/results"
python3 - "$W/times.json" "$KILN_RSS" "$SYFT_RSS" "$SIZE" "$(machine)" "$(cut -d' ' -f1 /proc/loadavg)" "$(syft version | awk '/^Version/ {print $2}')" "${KILN_BIN:+ (binary: $KILN_BIN)}" \
  > "$BENCH_DIR/results/sbom.md" <<'PY'
import json, sys
times, krss, srss, size, machine, load, sv, kb = sys.argv[1:]
r = {x["command"]: x for x in json.load(open(times))["results"]}
km, sm = r["kiln"]["median"], r["syft"]["median"]
krss, srss = int(krss), int(srss)
print("## SBOM: kiln sbom vs syft")
print()
print(f"Workload: a {int(size)/1e9:.2f} GB OCI archive (`kiln save`) of a 7-layer image (the base and 6 steps) built by kiln on Debian bookworm minbase: apt-installed python3 and python3-requests, 2000 npm packages, 40 copies of a Go binary, 300 MB of random data and 8 copies of /usr/bin and /usr/lib/x86_64-linux-gnu. Both write SPDX JSON; the same (type, name, version) set is checked first. syft {sv}; kiln{kb}. Machine: {machine}; load average at the end {load}. Medians of {len(r['kiln']['times'])} runs after a warm-up; peak RSS from `/usr/bin/time -v`.")
print()
print("| | kiln | syft | kiln / syft |")
print("|---|---|---|---|")
print(f"| time (median) | {km:.3f} s | {sm:.3f} s | {km/sm:.3f}× |")
print(f"| peak memory (max RSS) | {krss/1024:.1f} MB | {srss/1024:.1f} MB | {krss/srss:.3f}× |")
print()
print("kiln reads each layer once as a tar stream (layers in parallel), keeps only package databases and metadata files (parsed at once) and reads ELF executables one at a time for Go build info and cargo-auditable data; syft (stereoscope) reads every layer into its own file index and catalogs through it.")
PY
cat "$BENCH_DIR/results/sbom.md"
python3 - "$BENCH_DIR/RESULTS.md" "$BENCH_DIR/results/sbom.md" <<'PY'
import re, sys
path, section = sys.argv[1:]
text, new = open(path).read(), open(section).read().rstrip() + "\n"
head = "## SBOM: kiln sbom vs syft"
pat = re.compile(re.escape(head) + r".*?(?=\n## |\Z)", re.S)
text = pat.sub(new.rstrip("\n"), text) if head in text else text.rstrip("\n") + "\n\n" + new
open(path, "w").write(text)
PY

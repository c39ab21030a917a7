#!/usr/bin/env bash
# Shared by the benchmark scripts: tools, the kiln binary, the Debian
# minbase rootfs workload, and writing results.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-/var/tmp/kiln-bench}
mkdir -p "$CACHE"

bench_setup() {
  bash "$REPO/scripts/setup.sh"
  local need=()
  command -v hyperfine >/dev/null || need+=(hyperfine)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  (cd "$REPO" && cargo build --release --locked -q -p kiln)
  KILN=$REPO/target/release/kiln
}

# A Debian bookworm minbase root filesystem as a plain tarball (~200 MB).
debian_rootfs_tar() {
  local dir=$CACHE/debian-minbase tar=$CACHE/debian-minbase.tar
  if [ ! -f "$tar" ]; then
    if [ ! -x "$dir/bin/sh" ]; then
      rm -rf "$dir"
      debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1
    fi
    tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
  fi
  echo "$tar"
}

machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r), $(stat -f -c %T "$CACHE") filesystem"
}

# median_ratio JSON: prints "kiln_median peer_median" of a two-command hyperfine export.
medians() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(" ".join(f"{x['median']:.4f}" for x in r))
PY
}

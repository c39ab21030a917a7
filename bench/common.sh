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
  # KILN_BIN: time a kiln binary built elsewhere (a baseline) instead.
  if [ -n "${KILN_BIN:-}" ]; then
    KILN=$KILN_BIN
  else
    (cd "$REPO" && cargo build --release --locked -q -p kiln)
    KILN=${CARGO_TARGET_DIR:-$REPO/target}/release/kiln
  fi
}

# buildah and podman on these machines (see ARCHITECTURE.md): cgroupfs,
# runc, and a nofile limit they can set.
containers_conf() {
  if ! grep -q cgroupfs /etc/containers/containers.conf 2>/dev/null; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
  fi
}

# The build workload (bench/build.sh, bench/build-ab.sh): a 3-stage
# Dockerfile on kiln-bench/deb:1 and a context of 4,000 files, ~130 MB, the
# same bytes every time, in directory $1 (made once). Heredoc bodies stay
# at column 0 (their terminators must).
build_workload() {
local CTX=$1
if [ ! -f "$CTX/.complete" ]; then
  rm -rf "$CTX"
  python3 - "$CTX" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
total = 0
for i in range(4000):
    d = os.path.join(root, "src", f"d{i % 40:03d}")
    os.makedirs(d, exist_ok=True)
    # Mostly small sources, some large assets: ~130 MB in all.
    size = rng.choice([2_000, 8_000, 20_000]) if i % 50 else 1_200_000
    ext = "c" if i % 50 else "bin"
    with open(os.path.join(d, f"f{i:04d}.{ext}"), "wb") as f:
        f.write(rng.randbytes(size))
    total += size
print(f"context: {total / 1e6:.0f} MB")
PY
  cat > "$CTX/Dockerfile" <<'DOCKERFILE'
FROM kiln-bench/deb:1 AS deps
RUN apt-get --version > /deps.txt && echo "deps ready" >> /deps.txt

FROM kiln-bench/deb:1 AS build
COPY src/ /src/
RUN cd /src && find . -type f -name '*.c' | sort | xargs cat | sha256sum > /build.sum

FROM kiln-bench/deb:1
COPY --from=deps /deps.txt /app/
COPY --from=build /build.sum /app/
COPY src/ /app/src/
RUN du -s /app > /app/du.txt
CMD ["cat", "/app/build.sum"]
DOCKERFILE
  mkdir -p "$CTX/src/d000" && echo initial > "$CTX/src/d000/changed.c"
  touch "$CTX/.complete"
fi
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

# The distribution registry (Debian's docker-registry) on 127.0.0.1:PORT,
# storing under DIR/dist, logging to DIR/dist.log; sets DPID and returns
# once it answers. The caller's trap stops it.
start_distribution() {
  local dir=$1 port=$2
  cat > "$dir/dist.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/dist
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$dir/dist.yml" > "$dir/dist.log" 2>&1 &
  DPID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "bench: the distribution registry did not answer on 127.0.0.1:$port (see $dir/dist.log)" >&2
  return 1
}

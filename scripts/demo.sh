#!/usr/bin/env bash
# The main job, end to end on a fresh machine: build kiln, make a base image
# from busybox, build on it, run it as containers (no daemon), manage it as
# a docker user would, push it to a registry and pull it into another store
# and run it there — then hand it to docker and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p kiln
kiln=$PWD/target/release/kiln
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KILN_ROOT=$work/store

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for a in sh ls cat echo uname sleep wc; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'hello from an image built by kiln' > "$work/rootfs/etc/motd"
tar -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .

step "$kiln" import "$work/rootfs.tar.gz" demo/busybox:1.0 --change 'CMD ["cat", "/etc/motd"]' -m "demo base"
step "$kiln" tag demo/busybox:1.0 demo/busybox:latest

mkdir -p "$work/app/src"
echo 'kiln built this image without a daemon' > "$work/app/src/message.txt"
echo 'not part of the image' > "$work/app/notes.log"
echo '*.log' > "$work/app/.dockerignore"
cat > "$work/app/Dockerfile" <<'DOCKERFILE'
# syntax=docker/dockerfile:1
FROM demo/busybox:1.0 AS build
ARG FLAVOR=plain
WORKDIR /work
COPY src/ ./
RUN <<EOF
set -e
{ cat message.txt; echo "flavor: $FLAVOR"; echo "built on: $(uname -s)"; } > report.txt
EOF

FROM demo/busybox:1.0
LABEL org.opencontainers.image.title="kiln demo"
COPY --from=build /work/report.txt /srv/report.txt
RUN --network=none cat /srv/report.txt | wc -l > /srv/lines
EXPOSE 8080
CMD ["sh", "-c", "cat /srv/report.txt; echo lines: $(cat /srv/lines)"]
DOCKERFILE
printf '\n\033[1m$ cat Dockerfile\033[0m\n'; cat "$work/app/Dockerfile"
step "$kiln" build -t demo/app:1.0 --build-arg FLAVOR=fresh "$work/app"
step "$kiln" build -t demo/app:1.0 --build-arg FLAVOR=fresh "$work/app"   # from the cache
step "$kiln" images
step "$kiln" history demo/app:1.0
step "$kiln" inspect --format '{{json .Config}}' demo/app:1.0
# Containers: one image, many containers, each with its own thin layer.
step "$kiln" run --rm demo/app:1.0
step "$kiln" run -d --name web -v demo-data:/data demo/app:1.0 sh -c 'echo serving; while true; do echo up > /data/state; sleep 1; done'
step "$kiln" ps
step "$kiln" exec web sh -c 'echo changed > /srv/note; cat /data/state'
step "$kiln" logs web
step "$kiln" diff web
step "$kiln" commit -m "with a note" web demo/app:noted
step "$kiln" stop -t 1 web
step "$kiln" ps -a
step "$kiln" rm web
step "$kiln" run --rm demo/app:noted cat /srv/note
step "$kiln" volume ls
step "$kiln" volume rm demo-data
step "$kiln" save -o "$work/demo.tar" demo/app:1.0
step "$kiln" system df
step "$kiln" system check

# Through a registry (the distribution registry on loopback): push, then
# pull into a second, empty store.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/registry" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null; rm -rf "$work"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
step "$kiln" tag demo/app:1.0 "127.0.0.1:$port/demo/app:1.0"
step "$kiln" push "127.0.0.1:$port/demo/app:1.0"
step "$kiln" --root "$work/store2" pull "127.0.0.1:$port/demo/app:1.0"
step "$kiln" --root "$work/store2" run --rm "127.0.0.1:$port/demo/app:1.0"
step "$kiln" --root "$work/store2" save -o "$work/pulled.tar" "127.0.0.1:$port/demo/app:1.0"
step docker load -i "$work/pulled.tar"
step docker run --rm --network none "127.0.0.1:$port/demo/app:1.0"
docker rmi "127.0.0.1:$port/demo/app:1.0" >/dev/null

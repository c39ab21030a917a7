#!/usr/bin/env bash
# kiln push/pull against skopeo copy, in one run, to and from the
# distribution registry (Debian's docker-registry) on loopback. The image:
# 7 gzip layers, ~350 MB, made once from a Debian minbase rootfs plus
# generated files (some incompressible, some text). Cold push (empty
# registry), cold pull (empty destination), then the same again with
# everything already present. Writes bench/results/registry.md and
# regenerates bench/RESULTS.md.
source "$(dirname "$0")/common.sh"
bench_setup
ROOTFS=$(debian_rootfs_tar)
W=$CACHE/registry
RUNS=${RUNS:-5}
PORT=${PORT:-5099}
HOST=127.0.0.1:$PORT
HF=(hyperfine --style basic --warmup 1)
SRC=$W/src-layout
mkdir -p "$W"

# The source image as an OCI layout with gzip layers (made once).
if [ ! -f "$SRC/.complete" ]; then
  rm -rf "$SRC"
  python3 - "$SRC" "$ROOTFS" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out, rootfs = sys.argv[1:]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d
def layer_from_tar(raw):
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    return put(gz), len(gz), "sha256:" + hashlib.sha256(raw).hexdigest()
rng = random.Random(7)
words = open("/usr/share/dict/words").read().split() if os.path.exists("/usr/share/dict/words") else [f"word{i}" for i in range(5000)]
layers = [layer_from_tar(open(rootfs, "rb").read())]
for n in range(6):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for i in range(300):
            if i % 3 == 0:
                data = rng.randbytes(rng.choice([200_000, 500_000]))
            else:
                data = " ".join(rng.choice(words) for _ in range(rng.choice([2_000, 20_000]))).encode()
            info = tarfile.TarInfo(f"app{n}/f{i:04d}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    layers.append(layer_from_tar(buf.getvalue()))
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]},
}, separators=(",", ":")).encode()
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s} for d, s, _ in layers],
}, separators=(",", ":")).encode()
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest), "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "img"}}]}
open(os.path.join(out, "index.json"), "w").write(json.dumps(index))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
print("layers (MB):", " ".join(f"{s / 1e6:.0f}" for _, s, _ in layers), f"total {sum(s for _, s, _ in layers) / 1e6:.0f} MB")
PY
  touch "$SRC/.complete"
fi
IMAGE_MB=$(python3 -c "
import json,os,sys
src='$SRC'
idx=json.load(open(src+'/index.json'))
m=json.load(open(src+'/blobs/sha256/'+idx['manifests'][0]['digest'][7:]))
print(round((sum(l['size'] for l in m['layers'])+m['config']['size'])/1e6))")

# The registry, restarted empty for cold pushes.
cat > "$W/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry-data
  delete:
    enabled: true
http:
  addr: $HOST
YML
cat > "$W/reset-registry.sh" <<SH
#!/usr/bin/env bash
pkill -f "docker-registry serve $W/registry.yml" 2>/dev/null || true
while pgrep -f "docker-registry serve $W/registry.yml" >/dev/null; do sleep 0.05; done
rm -rf $W/registry-data
(setsid docker-registry serve $W/registry.yml >>$W/registry.log 2>&1 &)
until curl -sf http://$HOST/v2/ >/dev/null; do sleep 0.05; done
sync
SH
chmod +x "$W/reset-registry.sh"
trap 'pkill -f "docker-registry serve $W/registry.yml" || true' EXIT

# kiln's source store holds the same image (copied in verified).
rm -rf "$W/kiln-src"
$KILN --root "$W/kiln-src" copy -q "oci:$SRC:img" "kiln:$HOST/kiln/img:1"

KPUSH="$KILN --root $W/kiln-src push -q $HOST/kiln/img:1"
SPUSH="skopeo copy -q --dest-tls-verify=false oci:$SRC:img docker://$HOST/skopeo/img:1"
"$W/reset-registry.sh"
"${HF[@]}" --runs "$RUNS" --export-json "$W/push.json" \
  -n "kiln push" --prepare "$W/reset-registry.sh" "$KPUSH" \
  -n "skopeo copy oci: → docker://" --prepare "$W/reset-registry.sh" "$SPUSH"

# Both images in the registry; pushes of what is already there.
$KPUSH >/dev/null; $SPUSH
"${HF[@]}" --runs "$RUNS" --export-json "$W/push-again.json" \
  -n "kiln push (all present)" "$KPUSH" \
  -n "skopeo copy (all present)" "$SPUSH"

# Pulls of the same image into an empty store / layout.
KPULL="$KILN --root $W/kiln-dst pull -q $HOST/kiln/img:1"
SPULL="skopeo copy -q --src-tls-verify=false docker://$HOST/kiln/img:1 oci:$W/skopeo-dst:img"
"${HF[@]}" --runs "$RUNS" --export-json "$W/pull.json" \
  -n "kiln pull" --prepare "rm -rf $W/kiln-dst; sync" "$KPULL" \
  -n "skopeo copy docker:// → oci:" --prepare "rm -rf $W/skopeo-dst; sync" "$SPULL"
"${HF[@]}" --runs "$RUNS" --export-json "$W/pull-again.json" \
  -n "kiln pull (all present)" "$KPULL" \
  -n "skopeo copy (all present)" "$SPULL"

python3 - "$W" "$IMAGE_MB" "$(machine)" "$(skopeo --version | awk '{print $3}')" "$(dpkg-query -W -f='${Version}' docker-registry)" "$RUNS" > "$BENCH_DIR/results/registry.md" <<'PY'
import json, sys
w, mb, machine, sver, rver, runs = sys.argv[1:]
mb = float(mb)
def med(name):
    return [r["median"] for r in json.load(open(f"{w}/{name}.json"))["results"]]
print("## Registry: kiln push/pull vs skopeo copy")
print()
print(f"Workload: a {mb:.0f} MB image of 7 gzip layers (a Debian minbase rootfs and six layers of generated files, a third of them incompressible) and its config, to and from the distribution registry {rver} on loopback (filesystem storage). Medians of {runs} runs (hyperfine, 1 warm-up). kiln pulls into its store (each blob fsync'd before it becomes visible); skopeo copies into an OCI layout directory.")
print(f"Machine: {machine}. skopeo {sver}.")
print()
print("| operation | kiln | skopeo | kiln throughput | skopeo throughput | kiln / skopeo throughput | goal | met |")
print("|---|---|---|---|---|---|---|---|")
k, s = med("push")
print(f"| push, empty registry | {k:.2f} s | {s:.2f} s | {mb / k:.0f} MB/s | {mb / s:.0f} MB/s | {s / k:.2f}× | — | — |")
k, s = med("pull")
ratio = s / k
print(f"| pull, empty destination | {k:.2f} s | {s:.2f} s | {mb / k:.0f} MB/s | {mb / s:.0f} MB/s | {ratio:.2f}× | ≥ 1.5× | {'yes' if ratio >= 1.5 else 'NO'} |")
k, s = med("push-again")
print(f"| push, everything present | {k * 1000:.0f} ms | {s * 1000:.0f} ms | — | — | — | < 100 ms | {'yes' if k < 0.1 else 'NO'} |")
k, s = med("pull-again")
print(f"| pull, everything present | {k * 1000:.0f} ms | {s * 1000:.0f} ms | — | — | — | — | — |")
PY
cat "$BENCH_DIR/results/registry.md"
bash "$BENCH_DIR/collect.sh"

#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 60).
# cargo-fuzz wants nightly flags; RUSTC_BOOTSTRAP lets the one stable
# toolchain here accept them. No sanitizer: kiln forbids unsafe code, and
# the targets assert the properties that matter (no panic, no escape).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1

# Seeds: real layers (plain, gzip, zstd) with the interesting entry kinds.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds/tree/d/sub" fuzz/corpus/apply fuzz/corpus/tar_check fuzz/corpus/dockerfile
echo hi > "$seeds/tree/d/f"; ln -sf f "$seeds/tree/d/link"; ln -f "$seeds/tree/d/f" "$seeds/tree/d/hard"
touch "$seeds/tree/d/.wh.gone" "$seeds/tree/d/sub/.wh..wh..opq"
tar -C "$seeds/tree" -cf "$seeds/layer.tar" .
gzip -c "$seeds/layer.tar" > "$seeds/layer.tar.gz"
zstd -q -c "$seeds/layer.tar" > "$seeds/layer.tar.zst"
cp "$seeds"/layer.* fuzz/corpus/apply/
cp "$seeds/layer.tar" fuzz/corpus/tar_check/
# Seeds for the Dockerfile frontend: every fixture and corpus Dockerfile.
for f in crates/kiln-dockerfile/testdata/**/Dockerfile crates/kiln-dockerfile/testdata/*/*/Dockerfile; do
  [ -f "$f" ] && cp "$f" "fuzz/corpus/dockerfile/$(echo "$f" | tr / _)"
done

for target in apply tar_check dockerfile; do
  echo "fuzz: $target for ${seconds}s"
  log=$(mktemp)
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (crashing input saved under fuzz/artifacts/$target)" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" || tail -n 3 "$log"
  rm -f "$log"
done
echo "fuzz: no crash, no escape, no panic"

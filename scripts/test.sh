#!/usr/bin/env bash
# The full test suite: unit, end-to-end, crash and interop tests (against
# real skopeo, umoci and docker, which setup.sh installs and starts), then
# the fuzz targets for a bounded time (FUZZ_SECONDS, default 60 each).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --locked
bash scripts/fuzz.sh

#!/usr/bin/env bash
# Regenerates bench/RESULTS.md from every bench/results/*.md.
set -euo pipefail
cd "$(dirname "$0")"
{
  echo "# Benchmark results"
  echo
  echo "Written by the scripts in this directory (\`bash bench/<name>.sh\`); each section comes from one run that times kiln and its peers together. Ratios are kiln / peer (lower is better)."
  for f in results/*.md; do
    echo
    cat "$f"
  done
} > RESULTS.md

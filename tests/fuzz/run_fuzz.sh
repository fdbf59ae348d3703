#!/usr/bin/env bash
# Runs one libFuzzer target for a short, reproducible while: a fixed seed, a
# fixed number of runs, starting from the checked-in seed inputs (copied to a
# scratch folder, because libFuzzer adds what it finds to its corpus folder).
# Usage: run_fuzz.sh BINARY SEED_DIR WORK_DIR RUNS
# Exits 77 (meson: skipped) with a reason when there is no binary to run.
set -euo pipefail
bin=$1 seeds=$2 work=$3 runs=$4
if [ ! -x "$bin" ]; then
  echo "skipped: fuzz target $bin was not built (clang++ with libFuzzer is needed)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
if [ -d "$seeds" ]; then cp "$seeds"/* "$work"/ 2>/dev/null || true; fi
exec "$bin" -seed=1 -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 "$work"

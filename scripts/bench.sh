#!/usr/bin/env bash
# Runs every benchmark and prints one table: callback ingest against the no-op route, live-stream
# fan-out, waiters, protocol micro-benchmarks natively and as wasm, wasm size and start-up. Each
# writes its part to bench/tmp/;
# scripts/bench-report.mjs merges them into bench/results.json, appends bench/history.jsonl and
# rewrites BENCHMARKS.md. Sets up and builds first. Nothing here passes or fails on a figure.
# BENCH_ONLY="fanout waiters" runs just those parts (names as in benches/, or "wasm").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/build.sh >/dev/null

parts=${BENCH_ONLY:-"wasm callback_load fanout waiters"}
rm -rf bench/tmp/*.json && mkdir -p bench/tmp
for part in $parts; do
  printf '==> bench %s\n' "$part" >&2
  if [[ $part == wasm ]]; then
    # Size and start-up, then the protocol micro-benchmarks natively and as wasm.
    scripts/bench-wasm.sh
  else
    cargo bench --locked --bench "$part"
  fi
done
node scripts/bench-report.mjs

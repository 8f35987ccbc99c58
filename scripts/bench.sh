#!/usr/bin/env bash
# Runs every benchmark and prints one table: callback ingest against the no-op route, live-stream
# fan-out, waiters, native protocol micro-benchmarks. Each writes its part to bench/tmp/;
# scripts/bench-report.mjs merges them into bench/results.json, appends bench/history.jsonl and
# rewrites BENCHMARKS.md. Sets up and builds first. Nothing here passes or fails on a figure.
# BENCH_ONLY="fanout waiters" runs just those parts (names as in benches/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/build.sh >/dev/null

parts=${BENCH_ONLY:-"protocol callback_load fanout waiters"}
rm -rf bench/tmp && mkdir -p bench/tmp
for part in $parts; do
  printf '==> bench %s\n' "$part" >&2
  cargo bench --locked --bench "$part"
done
node scripts/bench-report.mjs

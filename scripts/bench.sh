#!/usr/bin/env bash
# Runs every benchmark: native protocol micro-benchmarks, then callback ingest through the local
# worker. Sets up and builds first. Figures are printed; callback ingest also lands in
# bench/callback-ingest.json. Nothing here passes or fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
scripts/build.sh >/dev/null
cargo bench --locked --bench protocol
cargo bench --locked --bench callback_load
cargo bench --locked --bench waiters

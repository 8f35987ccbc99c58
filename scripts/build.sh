#!/usr/bin/env bash
# Builds the worker into build/ (release wasm, wasm-opt, esbuild shim) without touching the network.
# wrangler.toml's [build] command runs this, so `wrangler dev` and `wrangler deploy` use it too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN" worker-build; do
  # worker-build falls back to a download when an override is missing: fail fast instead.
  command -v "$bin" >/dev/null || { echo "missing $bin: run scripts/setup.sh" >&2; exit 1; }
done
worker-build --release
node scripts/strip-wasm-names.mjs build/index_bg.wasm

#!/usr/bin/env bash
# Wasm benchmarks, offline like scripts/build.sh:
#   (1) size and start-up of the built worker (scripts/bench-size.mjs -> bench/tmp/size-start.json);
#   (2) the protocol micro-benchmarks natively (cargo bench --bench protocol ->
#       bench/tmp/protocol-native.json) and as wasm under Node (benches/wasm-protocol,
#       scripts/bench-wasm-protocol.mjs -> bench/tmp/wasm-protocol.json).
# Sets up and builds what is missing first. Nothing here passes or fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
mkdir -p bench/tmp

step() { printf '==> %s\n' "$*" >&2; }
# wasm-opt as worker-build runs it (-O, its feature list, names kept).
wasm_opt() {
  "$root/node_modules/.bin/wasm-opt" "$1" -o "$2" -O \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-bulk-memory --enable-multivalue --enable-reference-types \
    --enable-exception-handling --debuginfo
}

# (1) Size and start-up of what wrangler would upload.
step "building the worker (scripts/build.sh, log in bench/tmp/build.log)"
scripts/build.sh >bench/tmp/build.log 2>&1 || { tail -20 bench/tmp/build.log >&2; exit 1; }

size_args=()
if ! node -e 'WebAssembly.compile(require("fs").readFileSync("build/index_bg.wasm")).catch(() => process.exit(1))'; then
  # This Node cannot compile the shipped module (exnref catch wrappers): time a proxy instead,
  # the same rustc output through wasm-bindgen without them and through the same wasm-opt.
  rustc_wasm=target/wasm32-unknown-unknown/release/deployment_gating.wasm
  proxy=bench/tmp/start-proxy/deployment_gating_bg.opt.wasm
  if [[ ! -f $proxy || $rustc_wasm -nt $proxy ]]; then
    step "making the start-up proxy module (wasm-bindgen without catch wrappers, wasm-opt -O)"
    wasm-bindgen --target web --out-dir bench/tmp/start-proxy "$rustc_wasm"
    wasm_opt bench/tmp/start-proxy/deployment_gating_bg.wasm "$proxy"
  fi
  size_args=(--start-proxy "$proxy")
fi
node scripts/bench-size.mjs "${size_args[@]}"

# (2) Protocol micro-benchmarks: native first (the wasm script reads its figures), then wasm,
# built with the worker's release profile and the same wasm-opt as the shipped module.
step "native protocol micro-benchmarks"
cargo bench --locked --bench protocol
step "building benches/wasm-protocol for wasm32 (log in bench/tmp/wasm-protocol-build.log)"
(cd benches/wasm-protocol \
  && cargo build --locked --release --target wasm32-unknown-unknown \
    --target-dir ../../target/wasm-protocol-bench) >bench/tmp/wasm-protocol-build.log 2>&1 \
  || { tail -20 bench/tmp/wasm-protocol-build.log >&2; exit 1; }
bench_wasm=target/wasm-protocol-bench/wasm32-unknown-unknown/release/wasm_protocol_bench.wasm
out=bench/tmp/wasm-protocol
if [[ ! -f $out/wasm_protocol_bench_bg.wasm || $bench_wasm -nt $out/wasm_protocol_bench_bg.wasm ]]; then
  step "wasm-bindgen --target nodejs and wasm-opt -O"
  rm -rf "$out"
  wasm-bindgen --target nodejs --out-dir "$out" "$bench_wasm"
  wasm_opt "$out/wasm_protocol_bench_bg.wasm" "$out/opt.wasm"
  mv "$out/opt.wasm" "$out/wasm_protocol_bench_bg.wasm"
fi
node scripts/bench-wasm-protocol.mjs "$out/wasm_protocol_bench.js"

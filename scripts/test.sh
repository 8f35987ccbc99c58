#!/usr/bin/env bash
# Sets up what is missing, then runs every check: formatting, the side crates' lock files,
# clippy, native unit tests, the release wasm build and its size budget, and the integration
# tests against that build in real workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-browser
source scripts/env.sh

step() { printf '==> %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all --check
step "lock files of the side crates (fuzz/, benches/wasm-protocol/) match the library"
for side in fuzz benches/wasm-protocol; do
  cargo metadata --locked --format-version 1 --manifest-path "$side/Cargo.toml" >/dev/null \
    || { echo "$side/Cargo.lock is stale: run cargo update --workspace --offline there" >&2; exit 1; }
done
step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --locked -- -D warnings
step "build the worker"
scripts/build.sh
scripts/check-size.sh
step "cargo test (unit and integration)"
cargo test --locked "$@"

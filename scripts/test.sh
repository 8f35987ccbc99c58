#!/usr/bin/env bash
# Sets up what is missing, then runs every check: formatting, clippy, native unit tests, the
# release wasm build and its size budget, and the integration tests against that build in real workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-browser
source scripts/env.sh

step() { printf '==> %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --locked -- -D warnings
step "build the worker"
scripts/build.sh
scripts/check-size.sh
step "cargo test (unit and integration)"
cargo test --locked "$@"

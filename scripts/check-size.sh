#!/usr/bin/env bash
# Fails when the built worker's gzipped .wasm exceeds the budget below, so growth is a decision
# (raise the budget in a commit that says why), not an accident. Run by scripts/test.sh.
#
# Budget: 395,000 bytes gzip -9, about 3% above the 383,245 of 2026-12-03 (RS256 moved to
# WebCrypto). Issue 7's goal is 300 KB for the whole upload; we are not there (see
# bench/NOTES.md for where the bytes are).
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=395000
wasm=build/index_bg.wasm
[[ -f $wasm ]] || { echo "no $wasm: run scripts/build.sh first" >&2; exit 1; }
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
printf 'wasm size: %d bytes raw, %d bytes gzip -9 (budget %d, %d%% used)\n' \
  "$raw" "$gz" "$BUDGET" $((gz * 100 / BUDGET)) >&2
if ((gz > BUDGET)); then
  echo "the gzipped wasm is $((gz - BUDGET)) bytes over budget: shrink it, or raise BUDGET in scripts/check-size.sh with the reason in the commit" >&2
  exit 1
fi

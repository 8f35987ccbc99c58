#!/usr/bin/env bash
# Fuzzes the pure protocol parsers (targets in fuzz/fuzz_targets) with cargo-fuzz: each target for
# the given seconds (default 60), one after the other, starting from its committed corpus in
# fuzz/corpus/<target>. New inputs go to fuzz/target/corpus/<target>, so the committed corpus only
# changes by hand (see fuzz/README.md). Installs the nightly toolchain and cargo-fuzz when missing.
# Exits non-zero if any target crashed, naming the input that crashed it.
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

CARGO_FUZZ_VERSION=0.13.2

step() { printf '==> %s\n' "$*" >&2; }

if ! rustup toolchain list | grep -q '^nightly'; then
  step "installing the nightly toolchain (cargo-fuzz needs -Zsanitizer)"
  rustup toolchain install nightly --profile minimal
fi

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != *"$CARGO_FUZZ_VERSION"* ]]; then
  step "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

seconds=${1:-60}
[[ $# -gt 0 ]] && shift
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
  step "fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/target/corpus/$target" "fuzz/artifacts/$target"
  log="fuzz/target/$target.log"
  stamp=$(mktemp)
  # Run from fuzz/ so paths stay short; the scratch corpus comes first, as libFuzzer writes there.
  if ! (cd fuzz && cargo +nightly fuzz run "$target" "target/corpus/$target" "corpus/$target" \
    -- -max_total_time="$seconds" -print_final_stats=1) >"$log" 2>&1; then
    failed+=("$target")
    tail -n 40 "$log" >&2
    find "fuzz/artifacts/$target" -type f -newer "$stamp" -printf 'crash input: %p\n' >&2
    printf 'reproduce: cd fuzz && cargo +nightly fuzz run %s <crash input>\n' "$target" >&2
  fi
  rm -f "$stamp"
  # libFuzzer's final stats: how many inputs ran and how fast.
  awk -v t="$target" '/^stat::number_of_executed_units/ { n = $2 }
    /^stat::average_exec_per_sec/ { r = $2 }
    /^stat::peak_rss_mb/ { m = $2 }
    END { if (n) printf "%-12s %12d execs %8d execs/s %6d MB peak\n", t, n, r, m }' "$log"
done

if [[ ${#failed[@]} -gt 0 ]]; then
  step "crashed: ${failed[*]} (logs in fuzz/target/<target>.log)"
  exit 1
fi
step "no crash in ${targets[*]}"

#!/usr/bin/env bash
# Sets up what is missing, builds, and serves the worker locally on real workerd with local KV
# and SQLite Durable Objects kept under .wrangler/state. PORT (default 8787) picks the port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
exec wrangler dev --local --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"

#!/usr/bin/env bash
# The demo: the whole pipeline on the local AWS emulator and SaaS sandbox (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --quiet --bin switchyard -- local "$@"

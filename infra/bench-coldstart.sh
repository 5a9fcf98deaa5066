#!/usr/bin/env bash
# Cold starts: builds the function binaries (release) and runs each under a Lambda Runtime API
# emulator against the local stack (see docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bins
exec ./target/release/switchyard bench cold-start "$@"

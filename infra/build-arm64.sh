#!/usr/bin/env bash
# The deployable artifacts exactly as a deploy builds them — `sam build` (samconfig.toml: no flag,
# no prompt), cargo-lambda for arm64 / provided.al2023, the release profile — and their sizes
# against the budget. CI runs it once after the test suite; run it before a deploy to see the same.
#   bash infra/build-arm64.sh            build, print the sizes, fail past the budget
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/venv.sh

# What each deployable binary may weigh (stripped), in bytes. #15's goal is 8 MB; see
# docs/performance.md for where the bytes go and what is left. 14 MiB since the functions link one
# crypto library, ring (classify 13.8 MB); 15 MiB since the binaries unwind
# on a panic as the batch handler needs (cargo lambda had been building them with abort: +1.1 to
# 1.5 MB each, classify 13.8 MB); 13 MiB since classify reads attached documents; 11 before.
BUDGET_BYTES=$((14 * 1024 * 1024))

ensure_venv .venv-sam infra/requirements-sam.txt
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 \
  || rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || { echo "the aarch64-unknown-linux-gnu Rust target is required (rustup target add)"; exit 1; }

export PATH="$PWD/.venv-sam/bin:$PATH" SAM_CLI_TELEMETRY=0
# `sam build` runs one `cargo lambda build --release --arm64 --bin <name>` per function, one after
# another, and each ends in a single-threaded fat-LTO link (~2½ min). Building every function's
# binary first in one such command (the same flags, so the same artifacts) lets cargo run those
# links side by side; sam's own commands then find them fresh and only copy them.
bins=$(sed -n 's/^ *Binary: *//p' template.yaml)
echo "== cargo lambda build --release --arm64 ($(echo $bins | tr ' ' ','))"
# shellcheck disable=SC2046 # one --bin per word
cargo lambda build --release --arm64 $(printf -- '--bin %s ' $bins)
echo "== sam build (arm64, provided.al2023)"
sam build >/dev/null

status=0
printf '%-24s %12s\n' "function" "bootstrap"
for dir in .aws-sam/build/*Function; do
  bin="$dir/bootstrap"
  [ -f "$bin" ] || { echo "$dir: no bootstrap was built"; status=1; continue; }
  bytes=$(stat -c %s "$bin")
  arch=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' ')   # ELF e_machine: b7 00 is aarch64
  verdict=ok
  [ "$arch" = "b700" ] || { verdict="not an arm64 binary (e_machine $arch)"; status=1; }
  [ "$bytes" -le "$BUDGET_BYTES" ] || { verdict="over the $((BUDGET_BYTES / 1048576)) MiB budget"; status=1; }
  printf "%-24s %9s MB  %s\n" "$(basename "$dir")" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')" "$verdict"
done
exit $status

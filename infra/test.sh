#!/usr/bin/env bash
# The whole test suite: formatting, lints, the SAM template checks, and every Rust test
# (unit + end-to-end against the local AWS emulator and SaaS sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

# What the suite needs from the system: Python with venv (the emulator, the linters), a C
# compiler (native crates) and headless Chromium (the console test drives a real browser).
# Installed here, so this one command works on a fresh machine; without apt, it says what to add.
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v "${CHROMIUM:-chromium}" >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "infra/test.sh needs: ${need_apt[*]} (install them, e.g. sudo apt-get install ${need_apt[*]})"
    exit 1
  fi
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

source infra/venv.sh
ensure_venv .venv infra/requirements.txt
ensure_venv .venv-sam infra/requirements-sam.txt
ensure_venv .venv-checkov infra/requirements-checkov.txt

echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
echo "== sam validate --lint"
.venv-sam/bin/sam validate --lint --template template.yaml

echo "== checkov (skipped checks and why: infra/checkov.yaml)"
.venv-checkov/bin/checkov -f template.yaml --config-file infra/checkov.yaml
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The operator commands build without the local stack (no emulator, no sandbox).
cargo clippy -p switchyard-cli --no-default-features -- -D warnings
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: one failing test binary does not hide what the others would say.
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

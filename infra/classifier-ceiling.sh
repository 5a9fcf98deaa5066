#!/usr/bin/env bash
# The linear-model ceiling on BANKING77 (banking77-train.csv, see docs/performance.md; or DATA): infra/classifier-ceiling.py in its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-banking77-train.csv}"
[ -f "$data" ] || { echo "no labelled CSV at $data (BANKING77: see docs/performance.md)"; exit 2; }
source infra/venv.sh
venv=.venv-ceiling
ensure_venv "$venv" infra/requirements-ceiling.txt
"$venv/bin/python" infra/classifier-ceiling.py "$data"

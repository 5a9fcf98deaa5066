#!/usr/bin/env bash
# The linear-model ceiling on BANKING77 (or DATA): infra/classifier-ceiling.py in its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/datasets/banking77/train.csv}"
[ -f "$data" ] || { echo "no labelled CSV at $data"; exit 2; }
source infra/venv.sh
venv=.venv-ceiling
ensure_venv "$venv" infra/requirements-ceiling.txt
"$venv/bin/python" infra/classifier-ceiling.py "$data"

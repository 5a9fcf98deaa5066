#!/usr/bin/env bash
# Intake's CPU path (verify + parse + normalize + SQS body) in Rust against the Python equivalent
# (Powertools + Pydantic, infra/bench/py_intake_baseline.py or $PY_BASELINE) on the same
# signed 0.5 KB Zendesk request, in one run: Python, then Rust (criterion), then Python again.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="${PY_BASELINE:-infra/bench/py_intake_baseline.py}"
[ -f "$baseline" ] || { echo "no Python baseline at $baseline (set PY_BASELINE)"; exit 2; }
source infra/venv.sh
venv=.venv-bench
ensure_venv "$venv" infra/requirements-bench.txt
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
SWITCHYARD_INTAKE_CASE_DIR="$work" cargo bench -q -p switchyard --bench intake -- --quick 'intake_zendesk/0.5KB' > /dev/null 2>&1
py() { "$venv/bin/python" "$baseline" "$work/intake-case.json" 20000 | tee -a "$work/py.txt"; }
py
SWITCHYARD_INTAKE_CASE_DIR="$work" cargo bench -q -p switchyard --bench intake -- 'intake_zendesk/0.5KB' 2>/dev/null | tee "$work/rust.txt"
py
"$venv/bin/python" - "$work" <<'PY'
import re, sys
work = sys.argv[1]
py = [float(m) for m in re.findall(r"([0-9.]+) us/event", open(f"{work}/py.txt").read())]
text = open(f"{work}/rust.txt").read()
mid, unit = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", text).groups()
rust_us = float(mid) * {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3}[unit]
py_us = sum(py) / len(py)
print(f"intake CPU path, 0.5 KB Zendesk event: rust {rust_us:.2f} us, python {py_us:.1f} us (mean of {len(py)} runs): {py_us / rust_us:.1f}x")
PY

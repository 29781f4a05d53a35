#!/usr/bin/env bash
# All GPU checks and the GPU benchmark of issue 6 in one go (see scripts/gpu_check.py for the sections).
# Prints one JSON object on stdout (progress on stderr); also writes $OUT/gpu_check.json when OUT is set.
# Safe on a machine without CUDA: it prints {"cuda": false, ...} and exits 0.
#   GPU_CHECK_BUDGET_S=420   soft time budget (sections are skipped once it is spent)
#   GPU_CHECK_PHOTOS=4096    photos per pipeline run (128 rendered photos, cycled)
#   GPU_CHECK_COMPILE=0      skip the torch.compile section
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then PY="$(command -v python3)"; fi
export PYTHONPATH="${PWD}${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" scripts/gpu_check.py "$@"
